"""Datasets in S3: `mosaicrs.write`, `Dataset` and the torch `Loader` against
a real moto server, started by the tests on a free loopback port."""

import http.client
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pytest

from .conftest import all_types_table, digits_like

mosaicrs = pytest.importorskip(
    "mosaicrs", reason="the mosaicrs wheel is not installed: run `make python`"
)

SECRET = "moto-secret-do-not-print"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto():
    """`python -m moto.server` from this interpreter's venv (moto[server] is
    in scripts/requirements.txt); killed when the module's tests end."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "moto.server exited at start"
                assert time.monotonic() < deadline, f"moto did not listen on port {port}"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def create_bucket(port: int, bucket: str) -> None:
    # moto does not check signatures: a bare PUT creates the bucket.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("PUT", f"/{bucket}")
    reply = conn.getresponse()
    assert reply.status == 200, reply.read()
    conn.close()


def options(port: int) -> dict:
    return {
        "aws_endpoint": f"http://127.0.0.1:{port}",
        "aws_allow_http": "true",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": SECRET,
        "aws_region": "us-east-1",
    }


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
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto}",
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
