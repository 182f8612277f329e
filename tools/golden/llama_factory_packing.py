"""Packs of LLaMA-Factory's SFT packing rule, for packages/data's packing test.

Runs `search_for_fit` and `greedy_knapsack` from LLaMA-Factory's own
`src/llamafactory/data/processor/processor_utils.py`, read from a checkout of hiyouga/LLaMA-Factory
(nothing of it is copied into this repository; the two functions are taken out of the file with `ast`
so that its scipy/sentence-transformers imports are not needed). Example indexes are then assigned as
its PackedSupervisedDatasetProcessor does: `length2indexes[length].pop()` for each length of a knapsack.

    /work/venv/bin/python tools/golden/llama_factory_packing.py /path/to/LLaMA-Factory \
        packages/data/src/tokenize/__fixtures__/llama-factory-packing.json

The first argument is a git directory or work tree; the commit used is recorded in the output.
"""

import ast
import bisect
import json
import random
import subprocess
import sys
from collections import defaultdict

REPO = sys.argv[1]
OUTPUT = sys.argv[2]
PATH = "src/llamafactory/data/processor/processor_utils.py"


def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], check=True, capture_output=True, text=True).stdout


source = git("show", f"HEAD:{PATH}")
tree = ast.parse(source)
wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in ("search_for_fit", "greedy_knapsack")]
assert len(wanted) == 2, "search_for_fit and greedy_knapsack not found"
namespace = {"bisect": bisect}
exec(compile(ast.Module(body=wanted, type_ignores=[]), PATH, "exec"), namespace)
greedy_knapsack = namespace["greedy_knapsack"]


def packs_of(lengths, capacity):
    length2indexes = defaultdict(list)
    for index, length in enumerate(lengths):
        length2indexes[length].append(index)
    return [[length2indexes[length].pop() for length in knapsack] for knapsack in greedy_knapsack(list(lengths), capacity)]


rng = random.Random(16)
cases = [
    {"lengths": [5, 3, 4, 2], "capacity": 8},
    {"lengths": [7, 7, 7, 1, 1, 1], "capacity": 8},
    {"lengths": [4, 4, 4, 4, 3, 3, 2, 8, 1], "capacity": 8},
    {"lengths": [rng.randint(1, 64) for _ in range(200)], "capacity": 128},
    {"lengths": [rng.randint(1, 512) for _ in range(300)], "capacity": 512},
]
for case in cases:
    case["packs"] = packs_of(case["lengths"], case["capacity"])

commit = git("rev-parse", "HEAD").strip()
with open(OUTPUT, "w") as file:
    json.dump({"source": f"hiyouga/LLaMA-Factory@{commit} {PATH}", "cases": cases}, file, separators=(",", ":"))
    file.write("\n")
print(f"wrote {len(cases)} cases to {OUTPUT}")
