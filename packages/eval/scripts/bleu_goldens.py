"""Golden BLEU values from NLTK for src/metrics/bleu.test.ts.

Run with Debian's python3-nltk (apt-get install python3-nltk):
    /usr/bin/python3 scripts/bleu_goldens.py > src/__fixtures__/bleu-goldens.json
Inputs are token lists, so the test checks BLEU alone (segmentation has its own tests).
"""
import json

import nltk
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

smooth = SmoothingFunction()

hyp_doc = "It is a guide to action which ensures that the military always obeys the commands of the party".split()
ref_doc = [
    "It is a guide to action that ensures that the military will forever heed Party commands".split(),
    "It is the guiding principle which guarantees the military forces always being under the command of the Party".split(),
    "It is the practical guide for the army always to heed the directions of the party".split(),
]

cases = [
    ("nltk documentation example, three references", ref_doc, hyp_doc),
    ("one reference", ref_doc[:1], hyp_doc),
    ("identical", [list("今天天气很好我们去公园散步")], list("今天天气很好我们去公园散步")),
    ("Chinese characters, partial", [list("今天天气很好我们去公园散步")], list("今天天气不错我们去公园")),
    ("no 3- or 4-gram match", [list("abcdefgh")], list("abxcdyefz")),
    ("hypothesis shorter than 4", [list("the cat sat on the mat")], list("thc")),
    ("no unigram match", [["a", "b", "c"]], ["x", "y", "z"]),
    ("longer hypothesis", [["the", "cat", "sat"]], ["the", "cat", "sat", "on", "the", "mat", "today"]),
    ("repeated words clipped", [["the", "cat", "is", "on", "the", "mat"]], ["the", "the", "the", "the", "the", "the", "the"]),
    ("closest reference length tie goes to the shorter", [list("abcd"), list("abcdefgh")], list("abcxef")),
]

out = {"nltk": nltk.__version__, "cases": []}
for name, refs, hyp in cases:
    out["cases"].append(
        {
            "name": name,
            "references": refs,
            "hypothesis": hyp,
            "nist": sentence_bleu(refs, hyp, smoothing_function=smooth.method3),
            "epsilon": sentence_bleu(refs, hyp, smoothing_function=smooth.method1),
        }
    )
print(json.dumps(out, ensure_ascii=False, indent=1))
