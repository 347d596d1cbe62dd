#!/usr/bin/env python3
"""Writes tests/translate/bleu_vectors.json: 13a tokenizations and corpus BLEU scores computed by
sacreBLEU itself (default BLEU(): 13a, mixed case, exp smoothing, n=4), for
tests/translate/bleu_test.cpp to hold ferry's C++ BLEU to. Run where sacrebleu is installed (the GPU
machine):  python3 scripts/make_bleu_vectors.py [out.json]
Inputs are fixed here (no randomness), so a rerun gives the same file for one sacrebleu version."""
import json
import sys

import sacrebleu
from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

TOKENIZE = [
    "Hello, world!", "It costs 1,000.50 dollars.", "3.5, not 3.", "x.5 5.x", "pages 10-20, -3 and a-b",
    "&quot;Hi&quot; &amp; bye &lt;3&gt;", "con-\ntinued\nline<skipped>", "¿Qué es esto? Él dijo: «sí».",
    "a\u00a0b\u3000c", "(a) [b] {c} x/y @home #1 50% a+b=c", "don't be well-known", "a..b,,c", "1..2", "end.)",
    "U.S.A. e.g. i.e.", "$5.00, 10% off!", "‘quoted’ “text” — dash – en", "tab\tseparated\ttext  ",
    "Y dijo Dios: Sea la luz: y fué la luz.", "¡OH Jehová, cuánto se han multiplicado mis enemigos!",
]

CORPORA = {
    "perfect": (["the cat sat on the mat ."], ["the cat sat on the mat ."]),
    "no_4gram": (["a b c d e"], ["a b c x e"]),
    "clipped": (["the the the the"], ["the cat"]),
    "brevity": (["the cat sat on"], ["the cat sat on the mat"]),
    "short_hyp": (["the cat sat"], ["the cat sat on the mat"]),
    "none": (["alpha beta gamma delta"], ["one two three four"]),
    "two_segments": (["a b c d", "x y"], ["a b c d", "z w"]),
    "spanish_verses": (
        ["En el principio creó Dios los cielos y la tierra.", "Y dijo Dios: Sea la luz; y fue la luz.",
         "Y la tierra estaba desordenada y vacía, y las tinieblas sobre la faz del abismo."],
        ["EN el principio crió Dios los cielos y la tierra.", "Y dijo Dios: Sea la luz: y fué la luz.",
         "Y la tierra estaba desordenada y vacía, y las tinieblas estaban sobre la haz del abismo, y el "
         "Espíritu de Dios se movía sobre la haz de las aguas."]),
    "punctuation_numbers": (["He paid 1,000.50 dollars (in 2020)-2021.", "well-known \"facts\" & figures!"],
                            ["He paid 1,000 dollars (in 2020) - 2021.", "well known “facts” & figures !"]),
    "empty_hypothesis": ([""], ["some reference words here"]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/translate/bleu_vectors.json"
    tok = Tokenizer13a()
    bleu = BLEU()
    data = {
        "sacrebleu_version": sacrebleu.__version__,
        "signature": str(bleu.get_signature()),
        "tokenize": [{"input": s, "output": tok(s.rstrip())} for s in TOKENIZE],
        "corpora": [],
    }
    for name, (hyps, refs) in CORPORA.items():
        s = bleu.corpus_score(hyps, [refs])
        data["corpora"].append({
            "name": name, "hypotheses": hyps, "references": refs, "score": s.score, "bp": s.bp,
            "sys_len": s.sys_len, "ref_len": s.ref_len, "counts": list(s.counts), "totals": list(s.totals),
        })
    with open(out, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {out}: {len(data['tokenize'])} tokenizations, {len(data['corpora'])} corpora "
          f"(sacrebleu {sacrebleu.__version__})")


if __name__ == "__main__":
    main()
