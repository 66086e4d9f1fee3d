"""The comparison server of the read benchmark: Kith's app on piccolo's stock SQLite engine.

Every other row of every benchmark runs the real ``kith serve`` (``_common.running_server``);
this one builds the same app the way ``kith serve`` does (``open_kith`` + ``create_app`` + one
uvicorn process with the same options) so that it can swap the engine underneath.
"""

from __future__ import annotations

import argparse
import sqlite3

import uvicorn
from kith.bootstrap import open_kith
from kith.http import create_app
from kith.logs import configure_logging
from kith.settings import load_settings
from piccolo.engine.sqlite import CONVERTERS as PICCOLO_CONVERTERS
from piccolo.engine.sqlite import SQLiteEngine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--stock-sqlite",
        action="store_true",
        help="use piccolo's own SQLiteEngine (a connection per query) instead of Kith's",
    )
    options = parser.parse_args()

    settings = load_settings()
    configure_logging(settings)
    kith = open_kith(settings)
    if options.stock_sqlite:
        # Only for the comparison figure: the benchmark reads, so the stock engine's missing
        # pragmas (foreign keys, busy timeout) do not matter here.
        kith.database.engine = SQLiteEngine(path=str(settings.sqlite_path))
        kith.database._bind()
        # And piccolo's own converters, which Kith's engine module replaced on import.
        for type_name, converter in PICCOLO_CONVERTERS.items():
            sqlite3.register_converter(type_name, converter)
    app = create_app(kith)
    # The options `kith serve` uses: Kith's middleware logs every request, uvicorn only its
    # own trouble.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=options.port,
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
