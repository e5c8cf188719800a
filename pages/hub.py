"""Hub: share local models on the Hugging Face Hub, pull models into the local zoo, browse and compare."""

import streamlit as st

from zoo.app import ui
from zoo.core.errors import ZooError
from zoo.hub import operations as hub

MODELS_KEY = "zoo.hub.models"
REVISIONS_KEY = "zoo.hub.revisions"
COMPARISON_KEY = "zoo.hub.comparison"


def push_section(token: str | None) -> None:
    names = [entry.name for entry in ui.model_store().entries()]
    if not names:
        st.info("The local zoo is empty: train a model on Train or Playground, or pull one.")
        return
    # Two columns keep the button, and the outcome below it, in view on a laptop's screen.
    with st.form("hub-push"):
        left, right = st.columns(2)
        model_name = left.selectbox("Model from the local zoo", names, key="hub-push-model")
        repo_id = right.text_input("Repo id", placeholder="your-name/mnist-cnn", key="hub-push-repo")
        message = left.text_input(
            "Commit message", placeholder="Push from Zoo Studio", key="hub-push-message"
        )
        tag = right.text_input("Tag this commit (optional)", placeholder="v1", key="hub-push-tag")
        private = left.checkbox("Private (applies when the repo is created)", key="hub-push-private")
        include_digits = right.checkbox(
            "Also push its personal digits (digits.npz)",
            key="hub-push-digits",
            help="The digits it was fine-tuned on. Off by default: your own drawings leave this machine "
            "only if you tick this.",
        )
        if not st.form_submit_button("Push", key="hub-push-submit"):
            return
        try:
            with st.spinner(f"Pushing {model_name} to {repo_id}…"):
                pushed = hub.push(
                    model_name,
                    repo_id.strip(),
                    token=token,
                    private=private,
                    message=message.strip() or None,
                    tag=tag.strip() or None,
                    store=ui.model_store(),
                    include_digits=include_digits,
                    by=ui.current_user(),
                )
        except ZooError as error:
            st.error(str(error))
            return
        tagged = f", tagged `{pushed.tag}`" if pushed.tag else ""
        st.success(
            f"Pushed **{model_name}** to [{pushed.repo_id}]({pushed.repo_url}): commit `{pushed.commit}`"
            f"{tagged}."
        )


def pull_section(token: str | None) -> None:
    with st.form("hub-pull"):
        repo_id = st.text_input("Repo id", placeholder="someone/mnist-cnn", key="hub-pull-repo")
        left, right = st.columns(2)
        revision = left.text_input("Revision: branch, tag or commit", value="main", key="hub-pull-revision")
        name = right.text_input("Name in the local zoo (optional)", key="hub-pull-name")
        if not st.form_submit_button("Pull", key="hub-pull-submit"):
            return
        try:
            with st.spinner(f"Pulling {repo_id}…"):
                pulled = hub.pull(
                    repo_id.strip(),
                    revision=revision.strip() or None,
                    token=token,
                    name=name.strip() or None,
                    store=ui.model_store(),
                    by=ui.current_user(),
                )
        except ZooError as error:
            st.error(str(error))
            return
        st.success(
            f"Pulled {pulled.repo_id} at `{pulled.revision}` (commit `{pulled.commit}`) into the local zoo "
            f"as **{pulled.entry.name}** ({pulled.entry.kind}). The Draw page can use it now."
        )


def browse_section(token: str | None) -> None:
    with st.form("hub-browse"):
        author = st.text_input("Author", key="hub-browse-author").strip()
        search = st.text_input("Repo id contains", key="hub-browse-search").strip()
        if st.form_submit_button("Search the hosted zoo", key="hub-browse-submit"):
            try:
                found = hub.list_models(author=author or None, search=search or None, token=token)
                st.session_state[MODELS_KEY] = found
            except ZooError as error:
                st.error(str(error))
    models = st.session_state.get(MODELS_KEY)
    if models is not None:
        st.caption(f"{len(models)} model(s) tagged `{hub.ZOO_TAG}`; metrics come from each model card.")
        if models:
            st.dataframe([model.to_row() for model in models], hide_index=True, width="stretch")


def revisions_section(token: str | None) -> None:
    with st.form("hub-revisions"):
        repo_id = st.text_input("Repo id", key="hub-revisions-repo").strip()
        if st.form_submit_button("Show revisions", key="hub-revisions-submit"):
            try:
                revisions = hub.list_revisions(repo_id, token=token)
                st.session_state[REVISIONS_KEY] = (repo_id, revisions)
                st.session_state.pop(COMPARISON_KEY, None)
            except ZooError as error:
                st.error(str(error))
    if REVISIONS_KEY not in st.session_state:
        return
    repo_id, revisions = st.session_state[REVISIONS_KEY]
    st.dataframe([revision.to_row() for revision in revisions], hide_index=True, width="stretch")
    choices = [revision.ref for revision in revisions]
    first_column, second_column = st.columns(2)
    first = first_column.selectbox("Compare", choices, index=min(1, len(choices) - 1), key="hub-first")
    second = second_column.selectbox("with", choices, key="hub-second")
    if st.button("Compare metrics", key="hub-compare"):
        try:
            st.session_state[COMPARISON_KEY] = hub.compare_revisions(repo_id, first, second, token=token)
        except ZooError as error:
            st.error(str(error))
    comparison = st.session_state.get(COMPARISON_KEY)
    if comparison is not None:
        show_comparison(comparison)
    with st.form("hub-tag"):
        revision = st.selectbox("Tag revision", choices, key="hub-tag-revision")
        tag = st.text_input("Tag", placeholder="v1", key="hub-tag-name").strip()
        if st.form_submit_button("Tag", key="hub-tag-submit"):
            try:
                commit = hub.tag_revision(repo_id, tag, revision=revision, token=token)
                st.success(f"Tagged commit `{commit}` of {repo_id} as `{tag}`.")
            except ZooError as error:
                st.error(str(error))


def show_comparison(comparison: hub.RevisionComparison) -> None:
    first = f"first: {comparison.first.revision} ({comparison.first.commit[:8]})"
    second = f"second: {comparison.second.revision} ({comparison.second.commit[:8]})"
    table = [
        {"metric": change.metric, first: change.first, second: change.second, "change": change.change}
        for change in comparison.changes()
    ]
    if table:
        st.dataframe(table, hide_index=True, width="stretch")
    else:
        st.info("Neither revision's model card declares metrics.")


def hub_page() -> None:
    """The Hub: push, pull, browse, and a repo's revisions compared and tagged, one tab each."""
    ui.run_through_app()
    ui.require_sign_in("push and pull models")
    st.title("Hub")
    st.write(
        f"The hosted zoo on **{hub.hub_endpoint()}**: push your models with a generated model card, pull "
        "anyone's (at a branch, tag or commit) for the Draw page, and compare a repo's revisions."
    )
    hub_token = ui.hub_token_field()
    st.caption(f"Token: {hub.token_source(hub_token)}.")
    push_tab, pull_tab, browse_tab, revisions_tab = st.tabs(["Push", "Pull", "Browse", "Revisions"])
    with push_tab:
        push_section(hub_token)
    with pull_tab:
        pull_section(hub_token)
    with browse_tab:
        browse_section(hub_token)
    with revisions_tab:
        revisions_section(hub_token)


hub_page()
