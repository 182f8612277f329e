"""Parquet files as the Hugging Face hub stores datasets (written by pyarrow, snappy-compressed), for
packages/data's parquet reader and the hub dataset tests.

Run: /work/venv/bin/python tools/golden/parquet_fixtures.py
Writes packages/data/src/readers/__fixtures__/{alpaca,sharegpt}.parquet and their rows as JSON.
"""

import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

OUT = pathlib.Path(__file__).resolve().parents[2] / "packages/data/src/readers/__fixtures__"

alpaca = [
    {"instruction": f"Say the number {n} in words", "input": "" if n % 2 else f"n = {n}", "output": f"number {n}", "id": 2**40 + n}
    for n in range(7)
]
sharegpt = [
    {
        "conversations": [
            {"from": "human", "value": f"What is {n} plus {n}?"},
            {"from": "gpt", "value": f"{2 * n}"},
        ],
        "system": "You add numbers.",
    }
    for n in range(5)
]

# Row groups of 3: the reader must walk several.
pq.write_table(pa.Table.from_pylist(alpaca), OUT / "alpaca.parquet", row_group_size=3, compression="snappy")
pq.write_table(pa.Table.from_pylist(sharegpt), OUT / "sharegpt.parquet", row_group_size=2, compression="snappy")
with open(OUT / "parquet-rows.json", "w") as file:
    json.dump({"pyarrow": pa.__version__, "alpaca": alpaca, "sharegpt": sharegpt}, file, indent=1)
    file.write("\n")
print("wrote", OUT)
