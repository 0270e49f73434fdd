"""moto's S3 server, as `python -m moto.server`, with every request served
under one lock.

moto checks a conditional write (`If-Match`, `If-None-Match`) and then stores
the object as two steps, and its server runs each connection on its own
thread, so two racing compare-and-swap writes can both succeed; on S3 one of
them fails. The lock makes each request atomic, as S3's conditional writes
are, and the tests of concurrent commits then test mosaicrs, not moto's
scheduling. Used by tests/moto_server.py and mosaicrs::testing::moto.

    python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import sys
import threading

import moto.server

_serve = moto.server.run_simple
_one_at_a_time = threading.Lock()


def _run_serialized(host, port, app, **options):
    def serialized(environ, start_response):
        with _one_at_a_time:
            # The whole response is produced inside the lock.
            return list(app(environ, start_response))

    return _serve(host, port, serialized, **options)


moto.server.run_simple = _run_serialized

if __name__ == "__main__":
    moto.server.main(sys.argv[1:])
