"""Versions from Python: Dataset(version=, as_of=), mosaicrs.log, write
metadata, and a resumed Loader that keeps reading its version."""

import datetime

import pyarrow as pa
import pytest

from conftest import run_cli

import mosaicrs
import mosaicrs.exceptions as mx

torch = pytest.importorskip("torch")

import mosaicrs.torch as mt  # noqa: E402


def ids(start: int, n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64())})


def read_ids(ds: mosaicrs.Dataset) -> list:
    return pa.table(ds).column("id").to_pylist()


def test_versions_read_and_log_with_metadata(tmp_path):
    path = str(tmp_path / "d")
    mosaicrs.write(ids(0, 5), path, metadata={"run": "first", "owner": "ml"})
    mosaicrs.write(ids(5, 3), path, mode="append")
    mosaicrs.write(ids(100, 2), path, mode="overwrite", metadata={"run": "fix"})

    assert mosaicrs.Dataset(path).version == 2
    assert read_ids(mosaicrs.Dataset(path, version=0)) == list(range(5))
    assert read_ids(mosaicrs.Dataset(path, version=1)) == list(range(8))
    assert read_ids(mosaicrs.Dataset(path, version="latest")) == [100, 101]

    log = mosaicrs.log(path)
    assert [(v.version, v.operation, v.rows_added, v.rows_removed, v.total_rows) for v in log] == [
        (2, "overwrite", 2, 8, 2),
        (1, "append", 3, 0, 8),
        (0, "create", 5, 0, 5),
    ]
    assert log[2].metadata == {"run": "first", "owner": "ml"}
    assert log[1].metadata == {}
    assert log[0].metadata == {"run": "fix"}
    assert log[0].writer["engine"] == "python"
    assert log[0].writer["mosaicrs"] == mosaicrs.__version__
    assert log[0].committed_at.tzinfo is not None
    assert log[0].committed_at >= log[1].committed_at >= log[2].committed_at

    # as_of: the newest version committed at or before the time.
    at = log[1].committed_at
    assert mosaicrs.Dataset(path, as_of=at).version == 1
    assert mosaicrs.Dataset(path, as_of=at.isoformat()).version == 1
    naive_utc = at.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    assert mosaicrs.Dataset(path, as_of=naive_utc).version == 1
    with pytest.raises(mx.VersionNotFoundError, match="version 9"):
        mosaicrs.Dataset(path, version=9)
    with pytest.raises(mx.InvalidInputError, match="not both"):
        mosaicrs.Dataset(path, version=0, as_of=at)
    with pytest.raises(mx.InvalidInputError, match="version="):
        mosaicrs.Dataset(path, version=-1)
    with pytest.raises(mx.InvalidInputError, match="metadata="):
        mosaicrs.write(ids(0, 1), path, mode="append", metadata={"run": 3})


def test_resumed_loader_keeps_its_version_after_append_and_overwrite(tmp_path, mosaicrs_cli):
    path = str(tmp_path / "d")
    mosaicrs.write(ids(0, 40), path)
    loader = mt.Loader(path, 4, columns=["id"], seed=7)
    assert loader.version == 0
    it = iter(loader)
    first = [next(it)["id"].tolist() for _ in range(3)]
    state = loader.state_dict()
    assert state["version"] == 0
    rest = [b["id"].tolist() for b in it]
    loader.close()

    mosaicrs.write(ids(40, 20), path, mode="append")
    mosaicrs.write(ids(1000, 8), path, mode="overwrite")

    resumed = mt.Loader(path, 4, columns=["id"], seed=7)
    assert resumed.version == 2
    resumed.load_state_dict(state)
    assert resumed.version == 0 and resumed.state_dict()["version"] == 0
    again = [b["id"].tolist() for b in resumed]
    assert again == rest
    seen = sorted(x for b in first + again for x in b)
    assert seen == list(range(40))
    resumed.close()

    # follow="latest": the run continues on the newest data, from the start
    # of the state's next epoch.
    moving = mt.Loader(path, 4, columns=["id"], seed=7, follow="latest")
    moving.load_state_dict(state)
    assert moving.version == 2 and moving.epoch == state["epoch"] + 1
    assert sorted(x for b in moving for x in b["id"].tolist()) == list(range(1000, 1008))
    moving.close()

    with pytest.raises(mx.InvalidInputError, match="follow"):
        mt.Loader(path, 4, follow="newest")
    with pytest.raises(mx.InvalidInputError, match="version= applies to a path"):
        mt.Loader(mosaicrs.Dataset(path), 4, version=0)
    pinned = mt.Loader(path, 4, columns=["id"], version=1)
    assert pinned.version == 1 and len(pinned.dataset) == 60
    pinned.close()

    # Once vacuum removed the version, resuming says which one and what is kept.
    run_cli(mosaicrs_cli, "vacuum", path, "--retain-versions", "1", "--grace-hours", "0", "--delete")
    with pytest.raises(mx.VersionNotFoundError, match=r"version 0 .*oldest kept version is 2.*follow='latest'"):
        mt.Loader(path, 4, columns=["id"], seed=7).load_state_dict(state)
