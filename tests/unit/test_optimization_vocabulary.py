"""The optimizer's instruction vocabulary is its own: the stand-in reads it, not the reverse."""

from __future__ import annotations

import subprocess
import sys

from stratlab.evolution.library import instruction_library
from stratlab.evolution.vocabulary import INSTRUCTIONS, instructions_for
from stratlab.llm.offline import DIRECTIVES


def test_every_key_is_unique_and_every_phrase_a_fragment() -> None:
    keys = [i.key for i in INSTRUCTIONS]
    assert len(keys) == len(set(keys))
    for instruction in INSTRUCTIONS:
        assert instruction.phrases and instruction.roles
        assert all(p == p.strip() and not p.endswith(".") for p in instruction.phrases)


def test_the_library_offers_the_vocabulary_as_sentences() -> None:
    for role in ("designer", "assessor"):
        library = instruction_library(role)
        assert list(library) == [i.key for i in instructions_for(role)]
        assert all(s[0].isupper() and s.endswith(".") for group in library.values() for s in group)


def test_the_stand_in_reacts_to_vocabulary_phrases_only() -> None:
    vocabulary = {i.key: i for i in INSTRUCTIONS}
    for directive in DIRECTIVES:
        if directive.mutable:
            assert directive.phrases == vocabulary[directive.key].phrases
            assert directive.roles == vocabulary[directive.key].roles
        else:  # a test fixture: evolution never draws it
            assert directive.key not in vocabulary


def test_the_vocabulary_does_not_import_the_llm_layer() -> None:
    code = (
        "import sys, stratlab.evolution.library;"
        "print(sorted(m for m in sys.modules if m.startswith('stratlab.llm')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
