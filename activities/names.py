"""Activity names: the contract between workflows and the worker pools.

Workflows call activities by these names (with typed inputs and results), so a workflow
module never imports the activity implementations or their heavy dependencies.
"""

# orchestrator pool: light store activities
START_SESSION = "start_session"
FINISH_SESSION = "finish_session"

# llm pool
DESIGN_STRATEGY = "design_strategy"
ASSESS_STRATEGY = "assess_strategy"

# compute pool
TRAIN_STRATEGY = "train_strategy"
ANALYSE_STRATEGY = "analyse_strategy"
RUN_BACKTEST = "run_backtest"
