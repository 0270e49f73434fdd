"""Datasets in S3: `mosaicrs.write`, `Dataset` and the torch `Loader` against
a real moto server (tests/moto_server.py), started by the tests on a free
loopback port."""

import json
import os
import socket
import time

import numpy as np
import pyarrow as pa
import pytest

from moto_server import MotoServer

from .conftest import all_types_table, digits_like

mosaicrs = pytest.importorskip(
    "mosaicrs", reason="the mosaicrs wheel is not installed: run `make python`"
)

SECRET = MotoServer.SECRET_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto(moto_server):
    """The session's moto server (tests/moto_server.py)."""
    return moto_server


def create_bucket(server: MotoServer, bucket: str) -> None:
    server.create_bucket(bucket)


def options(server: MotoServer) -> dict:
    return server.storage_options()


def test_write_to_s3_then_read_every_value_back(moto, tmp_path):
    create_bucket(moto, "values")
    table = all_types_table(n=700)
    url = "s3://values/runs/types"
    out = mosaicrs.write(table, url, shard_size="16k", batch_rows=100, storage_options=options(moto))
    assert out["committed"] and out["total_rows"] == 700

    ds = mosaicrs.Dataset(url, options(moto), cache_dir=tmp_path / "cache", cache_limit="64m")
    assert len(ds) == 700 and ds.num_shards > 1
    assert ds.path == url
    assert url in repr(ds) and SECRET not in repr(ds)
    # The shards are whole files in the cache, mapped from there.
    assert ds.local_path.startswith(str(tmp_path / "cache"))
    assert pa.table(ds).equals(table)
    rows = [699, 0, 350, 351]
    assert ds.take(rows).equals(table.take(rows))
    ds.verify()

    # A second write in mode error is refused; append adds the rows.
    with pytest.raises(FileExistsError, match="s3://values/runs/types"):
        mosaicrs.write(table, url, storage_options=options(moto))
    out = mosaicrs.write(table.slice(0, 10), url, mode="append", storage_options=options(moto))
    assert out["total_rows"] == 710
    again = mosaicrs.Dataset(url, options(moto), cache_dir=tmp_path / "cache")
    assert pa.table(again).equals(pa.concat_tables([table, table.slice(0, 10)]))


def test_loader_over_s3_yields_the_local_loaders_batches(moto, tmp_path):
    import torch

    from mosaicrs.torch import Loader

    create_bucket(moto, "train")
    table = digits_like(n=480)
    url = "s3://train/digits"
    mosaicrs.write(table, url, shard_size="4k", storage_options=options(moto))
    local = tmp_path / "digits.mosaicrs"
    mosaicrs.write(table, local, shard_size="4k")

    kwargs = dict(label="label", features=["f0", "f1", "f2", "f3"], seed=7, num_threads=2)
    remote = Loader(url, 32, storage_options=options(moto), cache_dir=tmp_path / "cache",
                    cache_limit=1 << 26, **kwargs)
    here = Loader(local, 32, **kwargs)
    assert len(remote) == len(here) == 480 // 32
    seen = []
    for (x, y), (lx, ly) in zip(remote, here):
        assert torch.equal(x, lx) and torch.equal(y, ly)
        seen.append(y)
    assert len(seen) == 15
    remote.close()
    here.close()

    # The values are the source's: sequential order reads rows 0..n.
    ordered = Loader(url, 48, storage_options=options(moto), cache_dir=tmp_path / "cache",
                     shuffle=False, **{k: v for k, v in kwargs.items() if k != "seed"})
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ordered])
    expect = np.stack([table[f"f{j}"].to_numpy() for j in range(4)], axis=1)
    np.testing.assert_array_equal(np.concatenate(xs), expect)
    np.testing.assert_array_equal(np.concatenate(ys), table["label"].to_numpy())
    ordered.close()


def test_credentials_from_the_environment(moto, tmp_path, monkeypatch):
    create_bucket(moto, "env")
    for key, value in {
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MOSAICRS_CACHE_DIR", str(tmp_path / "env-cache"))
    table = pa.table({"x": np.arange(50, dtype=np.float64)})
    mosaicrs.write(table, "s3://env/x", mode="overwrite")
    ds = mosaicrs.Dataset("s3://env/x")
    assert pa.table(ds).equals(table)
    assert ds.local_path.startswith(str(tmp_path / "env-cache"))


def test_missing_bucket_and_wrong_endpoint_name_the_url_not_the_secret(moto, tmp_path):
    table = pa.table({"x": [1.0, 2.0]})
    url = "s3://no-such-bucket/ds"
    with pytest.raises(OSError) as missing:
        mosaicrs.Dataset(url, options(moto), cache_dir=tmp_path / "cache")
    assert url in str(missing.value) and SECRET not in str(missing.value)
    with pytest.raises(OSError) as write_missing:
        mosaicrs.write(table, url, storage_options=options(moto))
    assert url in str(write_missing.value) and SECRET not in str(write_missing.value)

    # Nothing listens on this port: the error comes back promptly, naming the URL.
    wrong = dict(options(moto), aws_endpoint=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(OSError) as refused:
        mosaicrs.Dataset("s3://values/runs/types", wrong, cache_dir=tmp_path / "cache")
    assert "s3://values/runs/types" in str(refused.value)
    assert SECRET not in str(refused.value)
    assert time.monotonic() - started < 120

    # An existing bucket without a dataset: FileNotFoundError, as for a local path.
    create_bucket(moto, "empty")
    with pytest.raises(FileNotFoundError, match="s3://empty/nothing"):
        mosaicrs.Dataset("s3://empty/nothing", options(moto), cache_dir=tmp_path / "cache")


def test_bad_storage_options_are_refused_by_key_never_by_value(tmp_path):
    with pytest.raises(ValueError, match="no_such_option") as bad:
        mosaicrs.Dataset("s3://b/ds", {"no_such_option": SECRET})
    assert SECRET not in str(bad.value)
    with pytest.raises(TypeError, match="aws_region"):
        mosaicrs.Dataset("s3://b/ds", {"aws_region": 5})
    with pytest.raises(ValueError, match="storage_options"):
        mosaicrs.write(pa.table({"x": [1]}), tmp_path / "local", storage_options={"aws_region": "x"})
    with pytest.raises(ValueError, match="cache_limit"):
        mosaicrs.Dataset("s3://b/ds", {}, cache_limit="lots")
    assert os.environ.get("AWS_SECRET_ACCESS_KEY") != SECRET


def test_loader_streams_a_dataset_larger_than_its_cache(moto, tmp_path):
    """A cache of a third of the dataset: the loader streams it a block of
    shards at a time, every sample once per epoch, and the cache stays under
    its limit; a global shuffle, which needs every shard at once, is refused
    with the size it needs."""
    from mosaicrs.torch import Loader

    create_bucket(moto, "stream")
    table = digits_like(n=3000)
    url = "s3://stream/digits"
    mosaicrs.write(table, url, shard_size="16k", batch_rows=200, storage_options=options(moto))
    index = json.loads(moto.get("stream", "digits/index.json"))
    total = index["total_bytes"]
    assert len(index["shards"]) >= 6
    limit = total // 3
    cache = tmp_path / "small-cache"

    with pytest.raises(Exception, match="cache") as refused:
        Loader(url, 50, label="label", storage_options=options(moto), cache_dir=cache,
               cache_limit=limit)
    assert url in str(refused.value) and SECRET not in str(refused.value)

    loader = Loader(url, 50, label="label", features=["f0"], shuffle="block-local:1", seed=3,
                    storage_options=options(moto), cache_dir=cache, cache_limit=limit)
    assert loader.dataset.is_streamed
    for epoch in range(2):
        loader.set_epoch(epoch)
        x0 = [float(v) for x, _ in loader for v in x[:, 0]]
        assert sorted(x0) == sorted(float(v) for v in table["f0"].to_numpy().astype(np.float32))
    assert loader.dataset.bytes_downloaded >= total
    assert 0 < loader.dataset.peak_cache_bytes <= limit
    loader.close()

    # The same loader with a cache that holds the dataset maps it whole, and
    # yields the same batches as the streamed one for the same seed.
    whole = Loader(url, 50, label="label", features=["f0"], shuffle="block-local:1", seed=3,
                   storage_options=options(moto), cache_dir=tmp_path / "big-cache",
                   cache_limit=4 * total)
    assert not whole.dataset.is_streamed
    streamed = Loader(url, 50, label="label", features=["f0"], shuffle="block-local:1", seed=3,
                      storage_options=options(moto), cache_dir=cache, cache_limit=limit)
    for (a, la), (b, lb) in zip(whole, streamed):
        assert a.equal(b) and la.equal(lb)
    whole.close()
    streamed.close()


def test_one_dataset_class_is_cached_whole_or_streamed(moto, tmp_path):
    """`mosaicrs.Dataset` opens a remote dataset as the loader does: fetched
    whole when it fits in cache_limit, else streamed through the cache. Both
    read the same rows through every method, and the loader takes either."""
    import torch

    from mosaicrs.torch import Loader

    create_bucket(moto, "one")
    table = digits_like(n=3000)
    url = "s3://one/digits"
    mosaicrs.write(table, url, shard_size="16k", batch_rows=200, storage_options=options(moto))
    total = json.loads(moto.get("one", "digits/index.json"))["total_bytes"]
    limit = total // 3
    whole = mosaicrs.Dataset(url, options(moto), cache_dir=tmp_path / "big", cache_limit=4 * total)
    streamed = mosaicrs.Dataset(url, options(moto), cache_dir=tmp_path / "small",
                                cache_limit=limit)
    assert not whole.is_streamed and streamed.is_streamed
    assert "streamed" in repr(streamed) and "streamed" not in repr(whole)
    assert streamed.bytes_downloaded == 0  # opening a streamed dataset fetches no shard
    assert whole.local_path.startswith(str(tmp_path / "big"))
    assert streamed.local_path.startswith(str(tmp_path / "small"))

    rows = [2999, 0, 1500, 7, 1500]
    for ds in (whole, streamed):
        assert len(ds) == ds.num_rows == 3000
        assert ds.num_shards == whole.num_shards > 3
        assert ds.schema == table.schema and ds.path == url
        assert url in repr(ds) and SECRET not in repr(ds)
        assert pa.table(ds).equals(table)
        assert pa.RecordBatchReader.from_stream(ds).read_all().equals(table)
        assert ds.take(rows).equals(table.take(rows))
        assert ds.take(rows, columns=["label", "f0"]).equals(table.select(["label", "f0"]).take(rows))
        assert ds.take([]).num_rows == 0
        with pytest.raises(IndexError, match="3000"):
            ds.take([0, 3000])
        ds.verify()
    # The streamed reads went through the cache and kept under its limit.
    assert streamed.bytes_downloaded > 0 and 0 < streamed.peak_cache_bytes <= limit

    pl = pytest.importorskip("polars")
    assert pl.DataFrame(streamed)["id"].to_list() == list(range(3000))

    kwargs = dict(label="label", features=["f0"], shuffle="block-local:1", seed=3)
    from_object = Loader(streamed, 50, **kwargs)
    from_url = Loader(url, 50, storage_options=options(moto), cache_dir=tmp_path / "small",
                      cache_limit=limit, **kwargs)
    assert from_object.dataset is streamed and from_url.dataset.is_streamed
    batches = 0
    for (a, la), (b, lb) in zip(from_object, from_url):
        assert torch.equal(a, b) and torch.equal(la, lb)
        batches += 1
    assert batches == 3000 // 50
    from_object.close()
    from_url.close()
