"""Activity names: the contract between workflows and the worker pools.

Each activity is registered under one of these names (``@activity.defn(name=...)``) and
kept histories refer to it by that name, so a name never changes. Workflows call an
activity through its typed reference in ``activities.signatures``, which pairs the name
with its pool, input and result, so a workflow module never imports the activity
implementations or their heavy dependencies.
"""

# orchestrator pool: light store activities
START_SESSION = "start_session"
FINISH_SESSION = "finish_session"
REGISTER_STRATEGY = "register_strategy"  # a user's own spec, validated and stored

# llm pool
DESIGN_STRATEGY = "design_strategy"
ASSESS_STRATEGY = "assess_strategy"

# compute pool
TRAIN_STRATEGY = "train_strategy"
ANALYSE_STRATEGY = "analyse_strategy"
RUN_BACKTEST = "run_backtest"
EVALUATE_HOLDOUT = "evaluate_holdout"

# orchestrator pool: prompt evolution's store work
BEGIN_EXPERIMENT = "begin_experiment"
RECORD_TASK_RESULT = "record_task_result"
FINISH_EXPERIMENT = "finish_experiment"
BEGIN_GENERATION = "begin_generation"
SELECT_TASKS = "select_tasks"
LOAD_PARENTS = "load_parents"
REGISTER_OFFSPRING = "register_offspring"
RECORD_GENERATION = "record_generation"
APPLY_REVIEW = "apply_review"

# llm pool: prompt evolution
MUTATE_PROMPT = "mutate_prompt"
CHECK_OFFSPRING = "check_offspring"

# optimizer pool: NSGA-II (DEAP), concurrency 1, seeded
PROPOSE_OFFSPRING = "propose_offspring"
SELECT_SURVIVORS = "select_survivors"

# paper trading: one decision cycle is observe (compute) → execute (orchestrator) →
# compose (llm) → decide (orchestrator); open and status are orchestrator store work
PAPER_OPEN = "paper_open"
PAPER_OBSERVE = "paper_observe"
PAPER_EXECUTE = "paper_execute"
PAPER_COMPOSE = "paper_compose"
PAPER_DECIDE = "paper_decide"
PAPER_STATUS = "paper_status"
