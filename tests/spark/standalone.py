"""A real Spark standalone cluster for the tests: one master and workers,
each a separate JVM started from the pyspark that runs the tests
(`spark-class ...deploy.master.Master` / `...deploy.worker.Worker`), with
its own work and local folders, so executors share no disk with the driver
or with each other. Stopped (killed) when the fixture ends."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pyspark


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path, seconds=120):
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start on port {port}:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)


class StandaloneCluster:
    def __init__(self, root: Path, workers: int = 2, cores: int = 1, memory: str = "1g"):
        self.root = root
        spark_home = Path(pyspark.__file__).parent
        self.spark_class = str(spark_home / "bin" / "spark-class")
        self.processes = []
        self.port = free_port()
        env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_NO_DAEMONIZE": "1"}
        master_log = root / "master.log"
        master = subprocess.Popen(
            [self.spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(self.port), "--webui-port", str(free_port())],
            env=env, stdout=master_log.open("w"), stderr=subprocess.STDOUT)
        self.processes.append(master)
        wait_for_port(self.port, master, "the Spark master", master_log)
        self.worker_dirs = []
        for i in range(workers):
            work = root / f"worker-{i}" / "work"
            local = root / f"worker-{i}" / "local"
            work.mkdir(parents=True)
            local.mkdir(parents=True)
            self.worker_dirs.append(root / f"worker-{i}")
            port = free_port()
            log = root / f"worker-{i}.log"
            worker = subprocess.Popen(
                [self.spark_class, "org.apache.spark.deploy.worker.Worker", self.url,
                 "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(free_port()),
                 "--cores", str(cores), "--memory", memory, "--work-dir", str(work)],
                env={**env, "SPARK_LOCAL_DIRS": str(local)},
                stdout=log.open("w"), stderr=subprocess.STDOUT)
            self.processes.append(worker)
            wait_for_port(port, worker, f"Spark worker {i}", log)
        self.wait_for_workers(workers, master_log)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def wait_for_workers(self, count: int, master_log: Path, seconds=120):
        deadline = time.monotonic() + seconds
        while master_log.read_text().count("Registering worker") < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} workers did not register:\n{master_log.read_text()[-3000:]}")
            time.sleep(0.2)

    def files_under_workers(self, suffix: str) -> list:
        """Files ending in `suffix` anywhere in the workers' folders."""
        return sorted(str(p) for d in self.worker_dirs for p in d.rglob(f"*{suffix}"))

    def stop(self):
        for p in reversed(self.processes):
            p.kill()
        for p in self.processes:
            p.wait()
