"""Prompt evolution (seed 003) on the lab's side: benchmarks, regression runs, generations.

``suite`` loads the packaged ``suite.toml`` (research tasks over the bundled real data:
instrument x market period x objective); ``benchmarks`` judges and scores a cycle's
out-of-sample result against a task's criteria; ``experiments`` turns a regression run's
cycles into fitness; ``generations`` plans NSGA-II generations, ``lifecycle`` registers
and tags their prompts and ``generation_record`` records them; ``verdicts`` says why each
offspring is or is not a candidate and counts a generation's cycles; ``mutation`` asks the
mutator and sanity roles; ``library`` holds what the structural mutations draw from.
"""
