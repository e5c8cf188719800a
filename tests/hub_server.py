"""A Hugging Face Hub-compatible HTTP server on 127.0.0.1 for the tests (stdlib only).

It implements what the real ``huggingface_hub`` client (2.4) and Keras' ``hf://`` support use:
whoami, repo creation, preupload, commits with regular files and LFS (batch, upload, verify)
for files of 10 MiB or more, model info with siblings and card data, tree, refs, commits,
tags, model listing with filters, and file resolution with the headers the client needs.
Repos live in memory: commits have 40-hex ids, branches and tags point at them. Errors carry
``X-Error-Code`` / ``X-Error-Message`` like the Hub, and deliberate errors are 4xx (a 5xx makes
the client retry for seconds).

Tokens: ``WRITE_TOKEN`` (user alice, write), ``READ_TOKEN`` (alice, read-only: 403 on writes),
``OTHER_TOKEN`` (user bob, write). Any other token gets 401.

``start_session_hub()`` starts one server per test process and points huggingface_hub at it
through the environment (``HF_ENDPOINT``, ``HF_HUB_DISABLE_XET``, ``HF_HOME``); it must run before
huggingface_hub or Keras is imported, which is why tests/conftest.py calls it.
"""

from __future__ import annotations

import atexit
import base64
import datetime
import hashlib
import itertools
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml
from loopback import LoopbackServer

WRITE_TOKEN = "hf_test_alice_write_0123456789"
READ_TOKEN = "hf_test_alice_read_0123456789"
OTHER_TOKEN = "hf_test_bob_write_0123456789"
LFS_THRESHOLD_BYTES = 10 * 1024 * 1024
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
GITATTRIBUTES = b"*.h5 filter=lfs diff=lfs merge=lfs -text\n*.keras filter=lfs diff=lfs merge=lfs -text\n"
REPO = r"(?P<repo>[^/]+/[^/]+?)"
ROUTES = [
    ("GET", r"/api/whoami-v2", "whoami"),
    ("POST", r"/api/repos/create", "create_repo"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("GET", r"/api/models", "list_models"),
    ("GET", rf"/api/models/{REPO}", "model_info"),
    ("GET", rf"/api/models/{REPO}/revision/(?P<rev>[^/]+)", "model_info"),
    ("GET", rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
    ("GET", rf"/api/models/{REPO}/refs", "refs"),
    ("GET", rf"/api/models/{REPO}/commits/(?P<rev>[^/]+)", "commits"),
    ("POST", rf"/api/models/{REPO}/tag/(?P<rev>[^/]+)", "create_tag"),
    ("POST", rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
    ("POST", rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", "commit"),
    ("POST", rf"/{REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
    ("PUT", rf"/_lfs/{REPO}/(?P<oid>[0-9a-f]{{64}})", "lfs_upload"),
    ("POST", rf"/_lfs/{REPO}/(?P<oid>[0-9a-f]{{64}})/verify", "lfs_verify"),
    ("GET", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ("HEAD", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
]


class HubHttpError(Exception):
    """A deliberate error answer: status, Hub error code and message."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class StoredFile:
    """One file in a commit: its bytes, and its LFS sha256 when it went through LFS."""

    data: bytes
    lfs_sha256: str | None = None

    @property
    def git_oid(self) -> str:
        stored = self.pointer if self.lfs_sha256 else self.data
        return hashlib.sha1(b"blob %d\0" % len(stored) + stored).hexdigest()

    @property
    def pointer(self) -> bytes:
        lines = [
            "version https://git-lfs.github.com/spec/v1",
            f"oid sha256:{self.lfs_sha256}",
            f"size {len(self.data)}",
        ]
        return ("\n".join(lines) + "\n").encode()

    @property
    def etag(self) -> str:
        return self.lfs_sha256 or self.git_oid

    def lfs_description(self, hash_key: str) -> dict:
        """The ``lfs`` object of model info (``hash_key="sha256"``) and tree listings (``"oid"``)."""
        return {hash_key: self.lfs_sha256, "size": len(self.data), "pointerSize": len(self.pointer)}


@dataclass(frozen=True)
class Commit:
    id: str
    parent: str | None
    files: dict[str, StoredFile]
    title: str
    message: str
    author: str
    date: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.repo_id.split("/")[0]

    def resolve(self, revision: str) -> Commit:
        revision = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        commit_id = self.branches.get(revision) or self.tags.get(revision)
        if commit_id is None and re.fullmatch(r"[0-9a-f]{40}", revision) and revision in self.commits:
            commit_id = revision
        if commit_id is None:
            raise HubHttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[commit_id]


def card_data(commit: Commit) -> dict | None:
    """The YAML header of README.md in ``commit``, as the Hub returns it in ``cardData``."""
    readme = commit.files.get("README.md")
    if readme is None:
        return None
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme.data.decode("utf-8", "replace"), re.DOTALL)
    if not match:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def hub_tags(card: dict | None) -> list[str]:
    """The tags the Hub derives from a card: its tags, library and datasets."""
    card = card or {}
    tags = list(card.get("tags") or [])
    if card.get("library_name"):
        tags.append(card["library_name"])
    datasets = card.get("datasets") or []
    tags += [f"dataset:{name}" for name in ([datasets] if isinstance(datasets, str) else datasets)]
    return list(dict.fromkeys(tags))


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class HubState:
    """All repos and LFS objects, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tokens = {
            WRITE_TOKEN: ("alice", "write"),
            READ_TOKEN: ("alice", "read"),
            OTHER_TOKEN: ("bob", "write"),
        }
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        # Misbehaviours, for the tests of a Hub that answers late, slowly or wrongly:
        self.stall_seconds = 0.0  # answer requests whose path matches stall_paths this much later
        self.stall_paths = ""  # a regular expression searched in the path ("": every request)
        self.trickle_seconds = 0.0  # > 0: send the headers, then the body one byte per this many seconds
        self.answer_instead: tuple[str, bytes] | None = None  # (content type, body) answered 200 to all
        self.busy_answers = 0  # answer this many requests 503 (busy) before answering as the Hub does
        self.released = threading.Event()  # set by reset(): stalled and trickling answers end at once
        self.list_sizes = True  # False: model info lists files without sizes, as some Hubs do
        self.counter = itertools.count()

    def new_commit(self, repo: Repo, parent: str | None, files: dict, title: str, message: str, author: str):
        seed = f"{repo.repo_id}|{parent}|{title}|{time.time_ns()}|{next(self.counter)}"
        commit = Commit(
            hashlib.sha1(seed.encode()).hexdigest(), parent, files, title, message, author, now_iso()
        )
        repo.commits[commit.id] = commit
        return commit


class HubServer(LoopbackServer):
    """The loopback Hub: ``start()``, ``url``, ``reset()``, ``stop()``; ``state`` for assertions."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = HubState()
        handler = type("BoundHubHandler", (HubHandler,), {"state": self.state})
        super().__init__(handler, "loopback-hub", host, port)
        handler.base_url = self.url

    def reset(self) -> None:
        """Forget every repo, object and logged request (tokens stay)."""
        with self.state.lock:
            self.state.repos.clear()
            self.state.lfs_objects.clear()
            self.state.requests.clear()
            self.state.unhandled.clear()
            self.state.stall_seconds = 0.0
            self.state.stall_paths = ""
            self.state.trickle_seconds = 0.0
            self.state.answer_instead = None
            self.state.list_sizes = True
            self.state.released.set()
            self.state.released = threading.Event()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision``, as the server stores them."""
        with self.state.lock:
            commit = self.state.repos[repo_id].resolve(revision)
            return {path: stored.data for path, stored in commit.files.items()}


class HubHandler(BaseHTTPRequestHandler):
    """Routes one request; the class attributes ``state`` and ``base_url`` are bound per server."""

    protocol_version = "HTTP/1.1"
    state: HubState
    base_url: str

    def log_message(self, format, *args):
        """Quiet: the request list in ``state`` is the log tests use."""

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        body = self.read_body()
        with self.state.lock:
            self.state.requests.append((method, url.path))
            stall = self.state.stall_seconds if re.search(self.state.stall_paths, url.path) else 0.0
            answer_instead, released = self.state.answer_instead, self.state.released
            busy = self.state.busy_answers > 0
            self.state.busy_answers -= busy
        if stall and released.wait(stall):
            self.close_connection = True
            return
        if busy:
            self.send_answer(503, {"Content-Type": "text/plain"}, b"busy, try again")
            return
        if answer_instead is not None:
            self.send_answer(200, {"Content-Type": answer_instead[0]}, answer_instead[1])
            return
        try:
            for route_method, pattern, name in ROUTES:
                match = re.fullmatch(pattern, url.path)
                if route_method == method and match:
                    params = {
                        key: unquote(value) for key, value in match.groupdict().items() if value is not None
                    }
                    with self.state.lock:
                        getattr(self, f"handle_{name}")(body=body, **params)
                    return
            with self.state.lock:
                self.state.unhandled.append((method, url.path))
            raise HubHttpError(404, f"No route for {method} {url.path}")
        except HubHttpError as error:
            self.send_error_answer(error)

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # ---- answers -------------------------------------------------------------------------

    def send_json(self, data, status: int = 200, headers: dict | None = None) -> None:
        self.send_answer(
            status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data).encode()
        )

    def send_answer(self, status: int, headers: dict, payload: bytes) -> None:
        """Status, headers and (except for HEAD) the body; with ``trickle_seconds``, one byte at a time."""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command == "HEAD":
            return
        trickle, released = self.state.trickle_seconds, self.state.released
        if not trickle:
            self.wfile.write(payload)
            return
        self.close_connection = True  # the client may give up halfway
        try:
            for index in range(len(payload)):
                self.wfile.write(payload[index : index + 1])
                self.wfile.flush()
                if released.wait(trickle):
                    return
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up

    def send_error_answer(self, error: HubHttpError) -> None:
        headers = {"X-Error-Message": error.message}
        if error.code:
            headers["X-Error-Code"] = error.code
        self.send_json({"error": error.message}, error.status, headers)

    # ---- auth and lookup ------------------------------------------------------------------

    def caller(self) -> tuple[str, str] | None:
        """(user, role) of the bearer token, None without one; 401 for an unknown token."""
        authorization = self.headers.get("Authorization")
        if not authorization:
            return None
        token = authorization.removeprefix("Bearer ").strip()
        if token not in self.state.tokens:
            raise HubHttpError(401, INVALID_CREDENTIALS)
        return self.state.tokens[token]

    def require_writer(self, namespace: str) -> str:
        caller = self.caller()
        if caller is None:
            raise HubHttpError(401, INVALID_CREDENTIALS)
        user, role = caller
        if role != "write" or user != namespace:
            raise HubHttpError(
                403, f"You don't have the rights to write to {namespace}: your token is {role}-only"
            )
        return user

    def readable_repo(self, repo_id: str) -> Repo:
        repo = self.state.repos.get(repo_id)
        caller = self.caller()
        if repo is None or (repo.private and (caller is None or caller[0] != repo.owner)):
            raise HubHttpError(404, "Repository not found", "RepoNotFound")
        return repo

    def writable_repo(self, repo_id: str) -> tuple[Repo, str]:
        repo = self.readable_repo(repo_id)
        return repo, self.require_writer(repo.owner)

    def model_json(self, repo: Repo, commit: Commit, *, blobs: bool, with_card: bool = True) -> dict:
        card = card_data(commit)
        siblings = []
        for path, stored in sorted(commit.files.items()):
            sibling = {"rfilename": path}
            if blobs and self.state.list_sizes:
                sibling.update(size=len(stored.data), blobId=stored.git_oid)
                if stored.lfs_sha256:
                    sibling["lfs"] = stored.lfs_description("sha256")
            siblings.append(sibling)
        data = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.owner,
            "sha": commit.id,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": hub_tags(card),
            "library_name": (card or {}).get("library_name"),
            "createdAt": repo.created_at,
            "lastModified": commit.date,
            "siblings": siblings,
        }
        if card is not None and with_card:
            data["cardData"] = card
            if "model-index" in card:
                data["model-index"] = card["model-index"]
        return data

    # ---- endpoints ------------------------------------------------------------------------

    def handle_whoami(self, body: bytes) -> None:
        caller = self.caller()
        if caller is None:
            raise HubHttpError(401, INVALID_CREDENTIALS)
        user, role = caller
        self.send_json(
            {
                "type": "user",
                "name": user,
                "fullname": user.title(),
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": f"{role} token", "role": role},
                },
            }
        )

    def handle_create_repo(self, body: bytes) -> None:
        request = json.loads(body or b"{}")
        caller = self.caller()
        if caller is None:
            raise HubHttpError(401, INVALID_CREDENTIALS)
        namespace = request.get("organization") or caller[0]
        repo_id = f"{namespace}/{request['name']}"
        self.require_writer(namespace)
        if repo_id in self.state.repos:
            self.send_json(
                {"error": "You already created this model repo", "url": f"{self.base_url}/{repo_id}"}, 409
            )
            return
        private = request.get("visibility") == "private" or bool(request.get("private"))
        repo = Repo(repo_id, private, now_iso())
        initial = self.state.new_commit(
            repo, None, {".gitattributes": StoredFile(GITATTRIBUTES)}, "initial commit", "", namespace
        )
        repo.branches["main"] = initial.id
        self.state.repos[repo_id] = repo
        self.send_json({"url": f"{self.base_url}/{repo_id}", "name": repo_id, "id": initial.id})

    def handle_validate_yaml(self, body: bytes) -> None:
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---", content, re.DOTALL)
        errors = []
        if match:
            try:
                yaml.safe_load(match.group(1))
            except yaml.YAMLError as error:
                errors.append({"message": str(error).splitlines()[0]})
        self.send_json({"errors": errors, "warnings": []})

    def handle_list_models(self, body: bytes) -> None:
        caller = self.caller()
        author = self.query.get("author", [None])[0]
        search = (self.query.get("search", [""])[0]).lower()
        wanted_tags = set(self.query.get("filter", []))
        limit = int(self.query.get("limit", ["1000"])[0])
        with_card = any(key in self.query for key in ("cardData", "full", "expand"))
        found = []
        for repo in sorted(self.state.repos.values(), key=lambda r: r.repo_id):
            if repo.private and (caller is None or caller[0] != repo.owner):
                continue
            head = repo.commits[repo.branches["main"]]
            model = self.model_json(repo, head, blobs=False, with_card=with_card)
            if author and repo.owner != author:
                continue
            if search and search not in repo.repo_id.lower():
                continue
            if not wanted_tags <= set(model["tags"]):
                continue
            found.append(model)
        self.send_json(found[:limit])

    def handle_model_info(self, body: bytes, repo: str, rev: str = "main") -> None:
        stored = self.readable_repo(repo)
        commit = stored.resolve(rev)
        self.send_json(self.model_json(stored, commit, blobs="blobs" in self.query))

    def handle_tree(self, body: bytes, repo: str, rev: str, path: str = "") -> None:
        commit = self.readable_repo(repo).resolve(rev)
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        entries, folders = [], set()
        for file_path, stored in sorted(commit.files.items()):
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if len(parts) > 1 and not recursive:
                continue
            entry = {"type": "file", "oid": stored.git_oid, "size": len(stored.data), "path": file_path}
            if stored.lfs_sha256:
                entry["lfs"] = stored.lfs_description("oid")
            entries.append(entry)
        if prefix and not entries and not folders:
            raise HubHttpError(404, f"{path} does not exist at {rev}", "EntryNotFound")
        directories = [
            {"type": "directory", "oid": "0" * 40, "size": 0, "path": name} for name in sorted(folders)
        ]
        self.send_json(directories + entries)

    def handle_refs(self, body: bytes, repo: str) -> None:
        stored = self.readable_repo(repo)
        data = {
            "branches": [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": commit}
                for name, commit in stored.branches.items()
            ],
            "tags": [
                {"name": name, "ref": f"refs/tags/{name}", "targetCommit": commit}
                for name, commit in stored.tags.items()
            ],
            "converts": [],
        }
        if "include_prs" in self.query:
            data["pullRequests"] = []
        self.send_json(data)

    def handle_commits(self, body: bytes, repo: str, rev: str) -> None:
        stored = self.readable_repo(repo)
        commit: Commit | None = stored.resolve(rev)
        history = []
        while commit is not None:
            history.append(
                {
                    "id": commit.id,
                    "title": commit.title,
                    "message": commit.message,
                    "date": commit.date,
                    "authors": [{"user": commit.author}],
                }
            )
            commit = stored.commits.get(commit.parent) if commit.parent else None
        self.send_json(history)

    def handle_create_tag(self, body: bytes, repo: str, rev: str) -> None:
        stored, _ = self.writable_repo(repo)
        request = json.loads(body or b"{}")
        commit = stored.resolve(rev)
        tag = request.get("tag", "")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", tag):
            raise HubHttpError(400, f"Invalid tag name {tag!r}")
        if tag in stored.tags or tag in stored.branches:
            raise HubHttpError(409, f"Tag {tag} already exists")
        stored.tags[tag] = commit.id
        self.send_json({"tag": tag, "targetCommit": commit.id})

    def handle_preupload(self, body: bytes, repo: str, rev: str) -> None:
        stored, _ = self.writable_repo(repo)
        stored.resolve(rev)
        files = json.loads(body)["files"]
        self.send_json(
            {
                "files": [
                    {
                        "path": item["path"],
                        "uploadMode": "lfs" if item["size"] >= LFS_THRESHOLD_BYTES else "regular",
                        "shouldIgnore": False,
                        "oid": None,
                    }
                    for item in files
                ],
                "commitOid": stored.resolve(rev).id,
            }
        )

    def handle_commit(self, body: bytes, repo: str, rev: str) -> None:
        stored, user = self.writable_repo(repo)
        if rev not in stored.branches:
            raise HubHttpError(404, f"Invalid rev id: {rev}: commits go to a branch", "RevisionNotFound")
        parent = stored.commits[stored.branches[rev]]
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), None)
        if header is None:
            raise HubHttpError(400, "The commit has no header line")
        if header.get("parentCommit") and header["parentCommit"] != parent.id:
            raise HubHttpError(412, "A commit has happened since the parent commit you gave")
        files = dict(parent.files)
        for line in lines:
            value = line["value"]
            if line["key"] == "file":
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]))
            elif line["key"] == "lfsFile":
                data = self.state.lfs_objects.get(value["oid"])
                if data is None:
                    raise HubHttpError(
                        422, f"LFS object {value['oid']} for {value['path']} was never uploaded"
                    )
                files[value["path"]] = StoredFile(data, value["oid"])
            elif line["key"] == "deletedFile":
                if value["path"] not in files:
                    raise HubHttpError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
            elif line["key"] == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {path: data for path, data in files.items() if not path.startswith(prefix)}
            elif line["key"] != "header":
                raise HubHttpError(400, f"Unknown commit operation {line['key']!r}")
        commit = self.state.new_commit(
            stored, parent.id, files, header.get("summary") or "Upload", header.get("description") or "", user
        )
        stored.branches[rev] = commit.id
        self.send_json(
            {
                "success": True,
                "commitOid": commit.id,
                "commitUrl": f"{self.base_url}/{stored.repo_id}/commit/{commit.id}",
                "commitMessage": commit.title,
            }
        )

    def handle_lfs_batch(self, body: bytes, repo: str) -> None:
        stored, _ = self.writable_repo(repo)
        request = json.loads(body)
        if request.get("operation") != "upload":
            raise HubHttpError(400, "Only LFS uploads are supported")
        objects = []
        for item in request["objects"]:
            answer = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in self.state.lfs_objects:
                base = f"{self.base_url}/_lfs/{stored.repo_id}/{item['oid']}"
                answer["actions"] = {
                    "upload": {"href": base, "expires_at": "2099-01-01T00:00:00Z"},
                    "verify": {"href": f"{base}/verify"},
                }
            objects.append(answer)
        self.send_json(
            {"transfer": "basic", "objects": objects},
            headers={"Content-Type": "application/vnd.git-lfs+json"},
        )

    def handle_lfs_upload(self, body: bytes, repo: str, oid: str) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubHttpError(400, "The uploaded bytes do not match the LFS object id")
        self.state.lfs_objects[oid] = body
        self.send_json({})

    def handle_lfs_verify(self, body: bytes, repo: str, oid: str) -> None:
        self.writable_repo(repo)
        request = json.loads(body)
        data = self.state.lfs_objects.get(oid)
        if data is None or len(data) != request.get("size"):
            raise HubHttpError(404, f"LFS object {oid} is missing or has the wrong size")
        self.send_json({})

    def handle_resolve(self, body: bytes, repo: str, rev: str, path: str) -> None:
        stored = self.readable_repo(repo)
        commit = stored.resolve(rev)
        file = commit.files.get(path)
        if file is None:
            raise HubHttpError(404, f"{path} does not exist at {rev}", "EntryNotFound")
        data, status = file.data, 200
        headers = {
            "X-Repo-Commit": commit.id,
            "ETag": f'"{file.git_oid}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.split('/')[-1])}",
        }
        if file.lfs_sha256:
            headers.update({"X-Linked-Etag": f'"{file.lfs_sha256}"', "X-Linked-Size": str(len(data))})
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if ranged:
            start = int(ranged.group(1))
            end = int(ranged.group(2)) if ranged.group(2) else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self.send_answer(status, headers, data)


def start_session_hub() -> HubServer:
    """Start this process's loopback Hub once and point huggingface_hub at it via the environment.

    Sets ``HF_ENDPOINT``, ``HF_HUB_DISABLE_XET=1`` (the server speaks LFS, not Xet), a temporary
    ``HF_HOME`` (cache and token file) and ``HF_HUB_DISABLE_TELEMETRY``; call it before anything
    imports huggingface_hub or Keras, which read these once at import.
    """
    global _SESSION_HUB
    if _SESSION_HUB is None:
        _SESSION_HUB = HubServer().start()
        hf_home = tempfile.mkdtemp(prefix="zoo-tests-hf-home-")
        atexit.register(shutil.rmtree, hf_home, ignore_errors=True)
        atexit.register(_SESSION_HUB.stop)
        os.environ.update(
            HF_ENDPOINT=_SESSION_HUB.url,
            HF_HUB_DISABLE_XET="1",
            HF_HOME=hf_home,
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
        )
        os.environ.pop("HF_TOKEN", None)
        os.environ.pop("HF_HUB_CACHE", None)
    return _SESSION_HUB


_SESSION_HUB: HubServer | None = None
