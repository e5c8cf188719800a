"""The studio in hosted mode through Streamlit's AppTest, with ``st.user`` set as ``st.login`` sets it:
what a visitor who is not signed in sees, and what a signed-in person may do with others' runs and models.
(tests/browser/test_sign_in_browser.py signs in for real, against a loopback OpenID Connect provider.)"""

from __future__ import annotations

import pytest
from run_helpers import claim
from streamlit.testing.v1 import AppTest
from test_app import APP, ended_run, texts

from zoo.core.hosting import User
from zoo.core.scores import ClassScores, Scores
from zoo.core.spec import TrainSpec
from zoo.ml.architectures import build_mnist_cnn
from zoo.runs.store import open_run_store
from zoo.storage.models import ModelConfig, ModelStore

ALICE = {"is_logged_in": True, "preferred_username": "alice", "email": "alice@example.org", "sub": "a"}
BOB = {"is_logged_in": True, "preferred_username": "bob", "email": "bob@example.org", "sub": "b"}
TEACHER = {"is_logged_in": True, "preferred_username": "teacher", "email": "t@example.org", "sub": "t"}


@pytest.fixture(autouse=True)
def hosted(monkeypatch):
    monkeypatch.setenv("ZOO_MODE", "hosted")
    monkeypatch.setenv("ZOO_ADMINS", "teacher")


def open_as(user: dict, page: str | None = None, query: dict[str, str] | None = None) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=90)
    app.user = dict(user)
    app.run()
    for name, value in (query or {}).items():
        app.query_params[name] = value
    if page:
        app.switch_page(f"pages/{page}.py")
        app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    return app


def alices_running_run() -> str:
    store = open_run_store()
    run_id = store.create_run(TrainSpec.cnn(mnist_source="embedded"), "cpu", owner=User("alice"))
    assert claim(store, run_id)
    return run_id


def test_a_visitor_who_is_not_signed_in_gets_home_learn_and_draw_and_a_sign_in_button():
    alices_running_run()
    app = open_as({"is_logged_in": False})
    links = {link.proto.label for link in app.get("page_link")}
    assert {"Learn", "Draw"} <= links and not {"Train", "Playground", "Runs", "Hub"} & links
    assert [button.label for button in app.sidebar.button] == ["Sign in"]
    sidebar = texts(app.sidebar.caption)
    assert "1 run(s) queued or training on this host" in sidebar and "No live run of yours" in sidebar
    learn = open_as({"is_logged_in": False}, "learn")
    assert "Training (sign in)" in texts(learn.caption)


@pytest.mark.parametrize(
    ("page", "what"),
    [
        ("train", "train a model"),
        ("playground", "train a model"),
        ("runs", "see and manage runs"),
        ("hub", "push and pull models"),
    ],
)
def test_a_visitor_on_a_shared_link_gets_that_page_asking_to_sign_in_not_page_not_found(page, what):
    run_id = ended_run(open_run_store(), TrainSpec.cnn(mnist_source="embedded"), "completed", None)
    app = open_as({"is_logged_in": False}, page, {"run": run_id})
    assert f"Sign in to {what}. You come back to this page after signing in." in texts(app.info)
    assert [button.label for button in app.main.button] == ["Sign in"]
    assert app.query_params["run"] == run_id  # the link's query stays for the return
    links = {link.proto.label for link in app.get("page_link")}
    assert not {"Train", "Playground", "Runs", "Hub"} & links  # offered by the link, not in the menu


def test_visitors_are_told_to_sign_in_to_start_a_run_not_to_open_pages_they_cannot_open():
    visitor = open_as({"is_logged_in": False})
    shown = texts(visitor.sidebar.caption) + texts(visitor.info)
    assert "Start one on" not in shown
    assert "No live run of yours. Sign in to start one." in texts(visitor.sidebar.caption)
    assert "No runs yet: sign in to start one." in texts(visitor.info)
    alice = open_as(ALICE)
    assert "No live run of yours. Start one on Train or Playground." in texts(alice.sidebar.caption)


def test_the_sidebar_shows_ones_own_live_runs_and_the_hosts_count():
    run_id = alices_running_run()
    alice = open_as(ALICE)
    assert [link.proto.label for link in alice.sidebar.get("page_link")] == [f"Live: cnn run {run_id}"]
    assert "Signed in as **alice**." in texts(alice.sidebar.caption)
    bob = open_as(BOB)
    assert [link.proto.label for link in bob.sidebar.get("page_link")] == []
    assert "1 run(s) queued or training on this host" in texts(bob.sidebar.caption)


@pytest.mark.parametrize(("user", "can_stop"), [(ALICE, True), (BOB, False), (TEACHER, True)])
def test_only_the_owner_or_an_admin_gets_the_stop_button_of_a_run(user, can_stop):
    run_id = alices_running_run()
    app = open_as(user, "train", {"run": run_id})
    assert [button.label for button in app.button if button.label == "Stop"] == (["Stop"] if can_stop else [])
    if can_stop:
        next(button for button in app.button if button.label == "Stop").click()
        app.run()
        assert open_run_store().heartbeat(run_id)  # the stop request reached the run


@pytest.mark.parametrize(("user", "can_rename"), [(ALICE, True), (BOB, False), (TEACHER, True)])
def test_only_the_owner_or_an_admin_may_rename_a_runs_model(user, can_rename):
    store = open_run_store()
    spec = TrainSpec.cnn(mnist_source="embedded")
    run_id = store.create_run(spec, "cpu", owner=User("alice"))
    assert claim(store, run_id)
    ModelStore().save(
        build_mnist_cnn(), "alices-cnn", config=ModelConfig("cnn", run_id=run_id, owner="alice")
    )
    store.finish(run_id, "completed", model_name="alices-cnn", final_metrics=EVALUATION)
    app = open_as(user, "train", {"run": run_id})
    fields = [field.label for field in app.text_input if field.label == "Keep the model in the local zoo as"]
    assert bool(fields) == can_rename
    if not can_rename:
        assert "The model **alices-cnn** is alice's: you can draw with it, not rename it." in texts(
            app.caption
        )


def number_input(app: AppTest, label: str):
    (found,) = [field for field in app.number_input if field.label == label]
    return found


def test_the_fields_stop_at_the_hosts_limits_and_say_so(monkeypatch):
    monkeypatch.setenv("ZOO_LIMIT_EPOCHS", "40")
    monkeypatch.setenv("ZOO_LIMIT_BATCH_SIZE", "20")  # below the Playground's default of 32, too
    train = open_as(ALICE, "train")
    epochs, batch_size = number_input(train, "Epochs"), number_input(train, "Batch size")
    assert (epochs.max, batch_size.max, batch_size.value) == (40, 20, 20)
    assert "this host allows 40 epochs per run" in epochs.help
    assert "this host allows batches of at most 20" in batch_size.help
    assert number_input(train, "Dense units").max == 1024 and not number_input(train, "Dense units").help
    playground = open_as(ALICE, "playground")
    epochs = number_input(playground, "Epochs")
    assert epochs.value == 40  # the article's 100 epochs are beyond this host: its 40
    assert "this host allows 40 epochs per run" in epochs.help
    # The Playground's number fields have no bounds of their own (issue 22, item 10): beyond the limit is
    # said under the field, with the limit, and Start refuses it.
    number_input(playground, "Epochs").set_value(41).run()
    assert "Epochs: 41 is not allowed; choose 1 to 40. At most 40" in texts(playground.error)
    (batch_sizes,) = [slider for slider in playground.select_slider if slider.label == "Batch size"]
    assert (batch_sizes.options[-1], batch_sizes.value) == ("16", 16)
    assert "this host allows batches of at most 20" in batch_sizes.help
    number_input(playground, "Epochs").set_value(30).run()
    next(button for button in playground.button if button.label == "Default settings").click()
    playground.run()
    assert not playground.exception and number_input(playground, "Epochs").value == 40
    assert [slider.value for slider in playground.select_slider if slider.label == "Batch size"] == [16]


def test_the_train_page_opens_on_a_run_whose_data_file_is_gone():
    """The fields' limits count the digits of the followed run's data; a file that is gone since
    leaves them unbounded by it (starting a run says what is wrong) instead of failing the page."""
    spec = TrainSpec.cnn(mnist_source="/gone/mnist.npz")
    run_id = ended_run(open_run_store(), spec, "failed", "the data file went away")
    app = open_as(TEACHER, "train", {"run": run_id})
    assert "Start training" in [button.label for button in app.button]


def test_a_failed_runs_message_shows_no_server_path_in_hosted_mode():
    message = "the worker process 123 ended without finishing the run (killed, or out of memory)"
    run_id = ended_run(open_run_store(), TrainSpec.cnn(mnist_source="embedded"), "failed", message)
    app = open_as(TEACHER, "train", {"run": run_id})
    error = texts(app.error)
    assert message in error and ".log" not in error and "/" not in error.replace("(killed, or", "")


EVALUATION = Scores(
    accuracy=0.5,
    macro_precision=0.5,
    macro_recall=0.5,
    macro_f1=0.5,
    num_misclassified=1,
    num_examples=2,
    confusion_matrix=tuple(tuple(int(row == column) for column in range(10)) for row in range(10)),
    per_class=tuple(ClassScores(digit, 0.5, 0.5, 0.5, 1) for digit in range(10)),
)


def test_the_hosted_train_page_offers_uploads_and_registered_data_sets_never_a_server_path(monkeypatch):
    monkeypatch.setenv("ZOO_CONFIG", str(_config_with_a_data_set(monkeypatch)))
    app = open_as(ALICE, "train")
    options = [option for radio in app.radio if radio.label == "MNIST source" for option in radio.options]
    assert not any("on the server" in option for option in options)
    assert any(option.startswith("An mnist.npz you upload (up to 60 MB)") for option in options)
    assert "Data set full-mnist (offered by this host)" in options
    assert not [field for field in app.text_input if field.label.startswith("Path of mnist.npz")]
    (uploader,) = app.get("file_uploader")
    assert uploader.proto.max_upload_size_mb == 60  # the browser refuses a larger file before sending it
    source = next(radio for radio in app.radio if radio.label == "MNIST source")
    source.set_value("upload")
    next(button for button in app.button if button.label == "Start training").click()
    app.run()
    assert "choose an mnist.npz to upload first" in texts(app.error) and open_run_store().list_runs() == []


def _config_with_a_data_set(monkeypatch):
    from zoo.core.paths import zoo_home

    path = zoo_home() / "hosted.toml"
    path.write_text('mode = "hosted"\n[datasets]\nfull-mnist = "/srv/data/mnist.npz"\n')
    return path


def test_the_admin_page_is_the_admins_overview_with_stop_and_delete():
    store, models = open_run_store(), ModelStore()
    live = alices_running_run()
    finished = store.create_run(TrainSpec.binary(), "cpu", owner=User("bob"))
    assert claim(store, finished)
    bobs = ModelConfig("cnn", run_id=finished, owner="bob")
    models.save(build_mnist_cnn(), "bobs-cnn", config=bobs, metrics=Scores(0.9))
    store.finish(finished, "completed", model_name="bobs-cnn", final_metrics=Scores(0.9))
    open_as(ALICE)  # alice and bob were on a page just now
    open_as(BOB)

    teacher = open_as(TEACHER)
    assert "Admin" in {link.proto.label for link in teacher.get("page_link")}
    admin = open_as(TEACHER, "admin")
    people = admin.table[0].value
    assert list(people["person"]) == ["alice", "bob", "local", "teacher"]
    assert list(people["active"]) == ["yes", "yes", "no", "yes"]
    assert list(admin.table[1].value["run"]) == [live]  # the queue
    assert people.set_index("person").loc["bob", "best CNN"] == "bobs-cnn · 90.0%"
    stop = next(box for box in admin.selectbox if box.label == "Live run")
    stop.set_value(live)
    next(button for button in admin.button if button.label == "Stop this run").click()
    admin.run()
    assert store.heartbeat(live)  # stop requested by the admin
    assert store.get(live).owner == "alice"
    chosen = next(box for box in admin.selectbox if box.label == "Run")
    chosen.set_value(finished)
    admin.checkbox(key="admin.delete_model").check()
    next(button for button in admin.button if button.label == "Delete this run").click()
    admin.run()
    assert not admin.exception and [run.id for run in store.list_runs()] == [live]
    assert "bobs-cnn" not in {entry.name for entry in models.entries()}


@pytest.mark.parametrize("user", [ALICE, BOB])
def test_a_student_has_no_admin_page_and_its_address_says_so_politely(user):
    app = open_as(user)
    assert "Admin" not in {link.proto.label for link in app.get("page_link")}
    admin = open_as(user, "admin")
    assert "This page is for the host's admins" in texts(admin.info)
    assert not admin.table and not admin.dataframe and [button.label for button in admin.main.button] == []


def alices_live_playground_run() -> str:
    """alice's Playground run, training: her own settings (spiral, 8,8 tanh units), not the page's."""
    store = open_run_store()
    spec = TrainSpec.binary(dataset="spiral", hidden_units=(8, 8), activation="tanh")
    run_id = store.create_run(spec.resolved(), "cpu", owner=User("alice"))
    assert claim(store, run_id)
    return run_id


def button(app: AppTest, label: str):
    return next(button for button in app.button if button.label == label)


def test_bob_following_alices_run_is_told_whose_it_is_and_can_load_its_settings():
    alices = alices_live_playground_run()
    app = open_as(BOB, "playground", {"run": alices})  # her link
    note = texts(app.info)
    assert f"**alice's run {alices}** (running), trained with: spiral: 400 points" in note
    assert "hidden units 8,8, tanh" in note and "alice's goes on training" in note
    assert app.selectbox(key="dataset").value == "moons"  # the page's settings are still his
    button(app, "Load this run's settings").click()
    app.run()
    assert app.selectbox(key="dataset").value == "spiral" and app.selectbox(key="activation").value == "tanh"
    assert [app.number_input(key=key).value for key in ("hidden_layers", "units_1", "units_2")] == [2, 8, 8]
    assert "Load this run's settings" not in [b.label for b in app.button]  # they are the page's now


@pytest.mark.parametrize("user", [BOB, TEACHER])
def test_start_on_someone_elses_live_run_starts_ones_own_and_says_hers_goes_on(user):
    alices = alices_live_playground_run()
    app = open_as(user, "playground", {"run": alices, "num_samples": "50", "num_epochs": "1"})
    button(app, "Start training").click()
    app.run()
    store = open_run_store()
    mine = app.query_params["run"]
    assert mine != alices and store.get(mine).owner == user["preferred_username"]
    assert store.get(alices).status == "running" and not store.get(alices).stop_requested
    assert f"Started run {mine} of your own. alice's run {alices} goes on training" in texts(app.info)
    # Queued behind hers (a CPU trains one Playground run at a time); stopped here, before it starts.
    assert store.request_stop(mine, by=User(user["preferred_username"])).status == "stopped"


def test_reset_on_someone_elses_live_run_leaves_it_and_says_so():
    alices = alices_live_playground_run()
    app = open_as(BOB, "playground", {"run": alices})
    button(app, "Reset").click()
    app.run()
    assert "run" not in app.query_params
    still = open_run_store().get(alices)
    assert still.status == "running" and not still.stop_requested
    assert f"You left alice's run {alices}; it goes on training" in texts(app.info)


def test_home_checks_that_servers_sharing_a_postgresql_run_store_have_a_cookie_secret(
    app_postgres_url, monkeypatch
):
    """The Home page's check reads the server's own secrets (any file it was started with), not only
    the files doctor looks in."""
    monkeypatch.setenv("ZOO_RUN_STORE", app_postgres_url)
    without = open_as(ALICE)
    (found,) = [error.value for error in without.error if error.value.startswith("**cookie secret**")]
    assert "no sign-in cookie secret is set" in found and "[auth] cookie_secret in" in found

    app = AppTest.from_file(str(APP), default_timeout=90)
    app.user = dict(ALICE)
    app.secrets["auth"] = {"cookie_secret": "one-for-every-server"}
    app.run()
    said = "[auth] cookie_secret in this server's secrets; it must be the same on every app server"
    assert f"**cookie secret**: {said}" in [success.value for success in app.success]
