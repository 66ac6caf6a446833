"""Test setup. The Hub settings come first: huggingface_hub reads them once, when imported (timm
imports it eagerly), so they must be in the environment before anything imports timm."""

import atexit
import os
import shutil
import socket
import tempfile


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_HF_HOME = tempfile.mkdtemp(prefix="timm-compound-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ.update(
    {
        "HF_ENDPOINT": f"http://127.0.0.1:{_free_port()}",  # tests/hub_server.py serves here (hub fixture)
        "HF_HOME": _HF_HOME,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",  # the test server speaks git-LFS, not xet
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
)
# measured latencies are cached here, never in the user's cache folder (timm_compound.cost.latency_cache)
_CACHE = tempfile.mkdtemp(prefix="timm-compound-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ["TIMM_COMPOUND_CACHE_DIR"] = _CACHE
for _name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
    os.environ.pop(_name, None)
# Under pytest-xdist each worker (and each process a test starts) computes on one thread: two workers
# with two threads each on a 2-core machine spend their time contending, not computing.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture
def meta():
    """Build models on the meta device: shapes without allocating weights."""
    with torch.device("meta"):
        yield


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    """tests/hub_server.py on the port HF_ENDPOINT names, for the whole session."""
    import huggingface_hub
    from hub_server import HubServer

    endpoint = os.environ["HF_ENDPOINT"]
    assert endpoint == huggingface_hub.constants.ENDPOINT, (
        "huggingface_hub was imported before conftest set HF_ENDPOINT"
    )
    server = HubServer(tmp_path_factory.mktemp("hub"), port=int(endpoint.rsplit(":", 1)[1])).start()
    yield server
    server.stop()


@pytest.fixture
def hub(hub_server):
    """The test Hub, with failure injection and the required token reset after each test."""
    yield hub_server
    hub_server.fail.clear()
    hub_server.token = None
    hub_server.lfs_suffixes = (".safetensors", ".bin")


@pytest.fixture(autouse=True)
def _user_rules_end_with_the_test():
    """A test that loads user rules (`tc.load_rules`) leaves the next test the rules it found: with
    pytest-xdist the next test on a worker is not always the same one."""
    from timm_compound.scaling.rulebook import active_rules, set_active_rules

    before = active_rules()
    yield
    if active_rules() is not before:
        set_active_rules(before)


# The longest test files first: pytest-xdist (--dist loadfile) hands files to its workers in collection
# order, so a long file collected last would leave one worker running it alone at the end.
_LONGEST_FIRST = (
    "test_docs_rules.py",
    "test_experiment.py",
    "test_experiment_workers.py",
    "test_search_distributed.py",
    "test_train.py",
    "test_search.py",
    "test_hub.py",
    "test_bad_input.py",
    "test_cost_model.py",
    "test_train_options.py",
    "test_rule_authoring.py",
    "test_norm.py",
    "test_rules_check_v3.py",
    "test_train_ddp.py",
    "test_train_resume.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order is kept
