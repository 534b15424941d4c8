-- stratlab schema: the single source of truth for every table the lab keeps in Postgres.
--
-- Applying this file twice is harmless: tables and indexes use IF NOT EXISTS, functions
-- CREATE OR REPLACE, triggers CREATE OR REPLACE TRIGGER (Postgres 14+). The store applies
-- it with `stratlab.store.db.apply_schema`, inside one transaction holding an advisory
-- lock, so workers that start together do not race on the catalog. The file holds no
-- BEGIN/COMMIT of its own for that reason.
--
-- Conventions: text ids are UUID strings made by workflows (`workflow.uuid4()`), so an
-- activity retry reuses them and every insert can be idempotent; timestamps are
-- timestamptz; money is numeric (exact decimal arithmetic for the budget); documents
-- that mirror pydantic DTOs are jsonb.

-- ===================================================================================
-- Prompt registry (seed 003): immutable prompt rows, append-only lifecycle tags
-- ===================================================================================

CREATE TABLE IF NOT EXISTS prompts (
    prompt_id    text PRIMARY KEY,
    role         text NOT NULL,
    version      text NOT NULL DEFAULT '1.0.0',
    system       text NOT NULL DEFAULT '',
    content      text NOT NULL,
    content_hash text NOT NULL,
    parent_ids   text[] NOT NULL DEFAULT '{}',
    generation   integer NULL,
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The same text for the same role is the same prompt: inserts are idempotent on it.
    CONSTRAINT prompts_role_content_hash_key UNIQUE (role, content_hash)
);
COMMENT ON TABLE prompts IS
    'Prompt registry: one immutable row per prompt text and role, with lineage '
    '(parent_ids, generation). content_hash = sha256(system || E''\n---\n'' || content). '
    'UPDATE, DELETE and TRUNCATE are rejected by triggers; lifecycle lives in prompt_tags.';
CREATE INDEX IF NOT EXISTS prompts_role_idx ON prompts (role, created_at DESC);

CREATE TABLE IF NOT EXISTS prompt_tags (
    event_id   bigserial PRIMARY KEY,
    prompt_id  text NOT NULL REFERENCES prompts (prompt_id),
    tag        text NOT NULL
        CHECK (tag IN ('draft', 'experimental', 'candidate', 'prod', 'archived')),
    actor      text NOT NULL DEFAULT 'system',
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE prompt_tags IS
    'Append-only lifecycle events of prompts: a prompt''s current tag is its latest event '
    '(highest event_id). UPDATE, DELETE and TRUNCATE are rejected by triggers.';
CREATE INDEX IF NOT EXISTS prompt_tags_prompt_idx ON prompt_tags (prompt_id, event_id DESC);

-- One function serves both tables and both trigger levels: TG_TABLE_NAME and TG_OP name
-- what was refused, so the error says exactly which statement broke the rule.
CREATE OR REPLACE FUNCTION stratlab_reject_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is immutable (append-only): % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Prompts are immutable: insert a new prompt row, or append a '
                     'prompt_tags event to change a lifecycle tag.';
END;
$$;

CREATE OR REPLACE TRIGGER prompts_immutable_rows
    BEFORE UPDATE OR DELETE ON prompts
    FOR EACH ROW EXECUTE FUNCTION stratlab_reject_mutation();
CREATE OR REPLACE TRIGGER prompts_immutable_truncate
    BEFORE TRUNCATE ON prompts
    FOR EACH STATEMENT EXECUTE FUNCTION stratlab_reject_mutation();
CREATE OR REPLACE TRIGGER prompt_tags_append_only_rows
    BEFORE UPDATE OR DELETE ON prompt_tags
    FOR EACH ROW EXECUTE FUNCTION stratlab_reject_mutation();
CREATE OR REPLACE TRIGGER prompt_tags_append_only_truncate
    BEFORE TRUNCATE ON prompt_tags
    FOR EACH STATEMENT EXECUTE FUNCTION stratlab_reject_mutation();

-- Ordered by event_id, not created_at: events written in one transaction share now().
CREATE OR REPLACE VIEW prompt_current_tags AS
SELECT DISTINCT ON (prompt_id)
       prompt_id, tag, actor, reason, created_at AS tagged_at, event_id
  FROM prompt_tags
 ORDER BY prompt_id, event_id DESC;
COMMENT ON VIEW prompt_current_tags IS 'Each tagged prompt''s current tag: its latest event.';

-- If several prompts of a role are still tagged prod, the one promoted last is current.
CREATE OR REPLACE VIEW prompt_current_prod AS
SELECT DISTINCT ON (p.role)
       p.prompt_id, p.role, t.tagged_at, t.event_id
  FROM prompts p
  JOIN prompt_current_tags t ON t.prompt_id = p.prompt_id
 WHERE t.tag = 'prod'
 ORDER BY p.role, t.event_id DESC;
COMMENT ON VIEW prompt_current_prod IS
    'The prod prompt of each role: the latest-promoted prompt whose current tag is prod.';

-- ===================================================================================
-- Research sessions (seed 002: agent_sessions, agent_actions, agent_triggers,
-- agent_metrics) and their progress
-- ===================================================================================

CREATE TABLE IF NOT EXISTS agent_sessions (
    session_id         text PRIMARY KEY,
    workflow_id        text NOT NULL,
    run_id             text NOT NULL DEFAULT '',
    trigger            text NOT NULL DEFAULT 'manual',
    symbol             text NOT NULL,
    kind               text NULL,  -- null: the designer picks rules or ml
    status             text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'finished')),
    outcome            text NULL CHECK (outcome IN (
        'success', 'failed_design', 'failed_training', 'failed_training_gate',
        'failed_backtest', 'failed_backtest_gate', 'failed_assessment', 'skipped_budget')),
    best_strategy_id   text NULL,
    input              jsonb NOT NULL DEFAULT '{}',
    result             jsonb NULL,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz NULL,
    designer_prompt_id text NULL,
    assessor_prompt_id text NULL,
    -- A finished session always says how it ended; a running one never does.
    CONSTRAINT agent_sessions_outcome_when_finished
        CHECK ((status = 'finished') = (outcome IS NOT NULL))
);
COMMENT ON TABLE agent_sessions IS
    'One row per research cycle (ResearchCycleWorkflow run): created running, finished '
    'with an outcome; input is the ResearchCycleInput, result the ResearchCycleResult.';
CREATE INDEX IF NOT EXISTS agent_sessions_started_idx ON agent_sessions (started_at DESC);
CREATE INDEX IF NOT EXISTS agent_sessions_symbol_idx ON agent_sessions (symbol, started_at DESC);
CREATE INDEX IF NOT EXISTS agent_sessions_running_idx
    ON agent_sessions (started_at DESC) WHERE status = 'running';

CREATE TABLE IF NOT EXISTS agent_actions (
    action_id         text PRIMARY KEY,  -- the idempotency key of the LLM call
    session_id        text NULL,
    experiment_id     text NULL,         -- regression / optimizer runs have no session
    iteration         integer NULL,
    role              text NOT NULL,
    prompt_id         text NULL,
    provider          text NOT NULL,
    model             text NOT NULL,
    input_tokens      integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens     integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cost_usd          numeric NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    latency_ms        double precision NOT NULL DEFAULT 0,
    latency_simulated boolean NOT NULL DEFAULT false,
    outcome           text NOT NULL DEFAULT 'ok',
    error             text NULL,
    cached            boolean NOT NULL DEFAULT false,  -- answered by the response cache
    created_at        timestamptz NOT NULL DEFAULT now()
);
-- Databases created before the response cache existed gain the column here.
ALTER TABLE agent_actions ADD COLUMN IF NOT EXISTS cached boolean NOT NULL DEFAULT false;
COMMENT ON TABLE agent_actions IS
    'Every LLM call (the design''s llm_calls): role, prompt, model, tokens, cost, latency '
    '(latency_simulated for the offline provider) and outcome. One row per action_id.';
CREATE INDEX IF NOT EXISTS agent_actions_session_idx ON agent_actions (session_id, created_at);
CREATE INDEX IF NOT EXISTS agent_actions_experiment_idx
    ON agent_actions (experiment_id, created_at) WHERE experiment_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS agent_actions_created_idx ON agent_actions (created_at DESC);

CREATE TABLE IF NOT EXISTS agent_triggers (
    trigger_id  text PRIMARY KEY,
    kind        text NOT NULL,  -- schedule, manual, cli, demo
    workflow_id text NULL,
    session_id  text NULL,
    decision    text NOT NULL CHECK (decision IN ('started', 'skipped_budget')),
    reason      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE agent_triggers IS
    'Every trigger check: what fired (schedule, manual, cli, demo) and whether a research '
    'cycle started or was skipped for budget, with the reason.';
CREATE INDEX IF NOT EXISTS agent_triggers_created_idx ON agent_triggers (created_at DESC);

CREATE TABLE IF NOT EXISTS agent_metrics (
    session_id       text PRIMARY KEY REFERENCES agent_sessions (session_id),
    symbol           text NOT NULL,
    outcome          text NOT NULL,
    iterations       integer NOT NULL DEFAULT 0,
    llm_calls        integer NOT NULL DEFAULT 0,
    input_tokens     bigint NOT NULL DEFAULT 0,
    output_tokens    bigint NOT NULL DEFAULT 0,
    tokens           bigint NOT NULL DEFAULT 0,
    cost_usd         numeric NOT NULL DEFAULT 0,
    duration_ms      double precision NOT NULL DEFAULT 0,
    best_strategy_id text NULL,
    best_sharpe      double precision NULL,
    computed_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE agent_metrics IS
    'Aggregates of a finished session, computed from agent_actions and backtests when the '
    'session finishes (recomputed if it is finished again).';

CREATE TABLE IF NOT EXISTS session_phases (
    session_id  text NOT NULL,
    iteration   integer NOT NULL DEFAULT 0,
    phase       text NOT NULL,  -- starting, budget, design, train, backtest, assess, ...
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NULL,
    status      text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'ok', 'failed', 'skipped')),
    detail      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (session_id, iteration, phase)
);
COMMENT ON TABLE session_phases IS
    'Progress of a research cycle, one row per (iteration, phase), upserted at its start '
    'and end, so a run under way is visible from the database alone.';

-- ===================================================================================
-- Research artifacts: strategies, training, backtests, assessments
-- ===================================================================================

CREATE TABLE IF NOT EXISTS strategies (
    strategy_id text PRIMARY KEY,
    session_id  text NULL,
    iteration   integer NOT NULL DEFAULT 0,
    name        text NOT NULL,
    kind        text NOT NULL,
    symbol      text NOT NULL,
    spec        jsonb NOT NULL,  -- StrategySpec
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE strategies IS
    'Every strategy the designer proposed (StrategySpec in spec); name, kind and symbol '
    'are copied out of the spec for listing.';
CREATE INDEX IF NOT EXISTS strategies_session_idx ON strategies (session_id, iteration);
CREATE INDEX IF NOT EXISTS strategies_symbol_idx ON strategies (symbol, created_at DESC);

CREATE TABLE IF NOT EXISTS training_runs (
    training_run_id text PRIMARY KEY,
    strategy_id     text NOT NULL REFERENCES strategies (strategy_id),
    session_id      text NULL,
    status          text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'failed')),
    report          jsonb NULL,  -- TrainingReport
    gate            jsonb NULL,  -- GateResult of the training gate
    model           bytea NULL,  -- the fitted ML model, serialized; null for rules
    best_params     jsonb NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz NULL
);
COMMENT ON TABLE training_runs IS
    'In-sample fitting of a strategy: report, training gate, best parameters and, for ML '
    'strategies, the fitted model. Upserted: created running, updated to its final state.';
CREATE INDEX IF NOT EXISTS training_runs_session_idx ON training_runs (session_id, created_at);
CREATE INDEX IF NOT EXISTS training_runs_strategy_idx ON training_runs (strategy_id);

-- No foreign key to training_runs: the training loop checkpoints epochs before the run's
-- row necessarily exists, and a checkpoint is only ever read back by its run id.
CREATE TABLE IF NOT EXISTS training_checkpoints (
    training_run_id text NOT NULL,
    epoch           integer NOT NULL,
    state           bytea NOT NULL,
    metrics         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (training_run_id, epoch)
);
COMMENT ON TABLE training_checkpoints IS
    'Per-epoch training state, so a retried training activity resumes from its latest epoch.';

CREATE TABLE IF NOT EXISTS backtests (
    backtest_id     text PRIMARY KEY,
    strategy_id     text NOT NULL REFERENCES strategies (strategy_id),
    training_run_id text NULL REFERENCES training_runs (training_run_id),
    session_id      text NULL,
    metrics         jsonb NOT NULL,  -- BacktestMetrics
    gate            jsonb NULL,      -- GateResult of the backtest gate
    params          jsonb NOT NULL DEFAULT '{}',
    equity          jsonb NULL,      -- {"ts": [iso...], "equity": [...], "benchmark": [...]}
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE backtests IS
    'Out-of-sample backtests: metrics, backtest gate, the parameters used and the equity '
    'curve with its buy-and-hold benchmark (large: loaded separately).';
-- The statistical gate (research integrity) and the ledger's N it was judged against.
ALTER TABLE backtests ADD COLUMN IF NOT EXISTS statistical_gate jsonb NULL;
ALTER TABLE backtests ADD COLUMN IF NOT EXISTS trials integer NULL;
CREATE INDEX IF NOT EXISTS backtests_session_idx ON backtests (session_id, created_at);
CREATE INDEX IF NOT EXISTS backtests_strategy_idx ON backtests (strategy_id, created_at DESC);

-- ===================================================================================
-- Research integrity: the trial ledger, walk-forward series, the holdout
-- ===================================================================================

-- One row per fit: its grid's combinations are trials of the research universe (a symbol
-- and the development period's first and last bar). The statistical gate judges a
-- strategy against the universe's sums: N, the effective N and the Sharpe dispersion.
CREATE TABLE IF NOT EXISTS trials (
    trial_id      text PRIMARY KEY,  -- the training run's id: a retried fit adds nothing
    universe      text NOT NULL,
    symbol        text NOT NULL,
    source        text NOT NULL CHECK (source IN ('cycle', 'optimizer', 'user')),
    session_id    text NULL,
    strategy_id   text NULL,
    n_trials      integer NOT NULL CHECK (n_trials >= 0),
    n_effective   double precision NOT NULL,
    sharpe_sum    double precision NOT NULL,
    sharpe_sq_sum double precision NOT NULL,
    bars          integer NOT NULL,
    oos_sharpe    double precision NULL,  -- the fit's walk-forward per-bar Sharpe
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE trials IS
    'The trial ledger: every fit that touched a return series of a research universe, '
    'with its count of trials (grid combinations), effective count and Sharpe sums '
    '(per bar) so the universe''s N and Sharpe variance are sums over rows.';
CREATE INDEX IF NOT EXISTS trials_universe_idx ON trials (universe, recorded_at);
CREATE INDEX IF NOT EXISTS trials_symbol_idx ON trials (symbol, recorded_at);

-- The stitched walk-forward out-of-sample bars of a fit: large, so never in a workflow
-- history; the backtest step turns them into the equity curve a session plots.
CREATE TABLE IF NOT EXISTS walk_forward_series (
    training_run_id text PRIMARY KEY,
    series          jsonb NOT NULL,  -- {"ts": [...], "returns": [...], "benchmark": [...]}
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE walk_forward_series IS
    'Per training run: the walk-forward out-of-sample bar returns and buy-and-hold returns.';

-- The final holdout: evaluated once per cycle, for the strategy the cycle chose. Kept
-- apart from backtests so nothing that feeds an LLM, chooses or ranks can read it.
CREATE TABLE IF NOT EXISTS holdout_evaluations (
    holdout_id      text PRIMARY KEY,
    session_id      text NULL,
    strategy_id     text NOT NULL REFERENCES strategies (strategy_id),
    training_run_id text NULL,
    result          jsonb NOT NULL,  -- HoldoutResult
    equity          jsonb NULL,      -- {"ts": [...], "equity": [...], "benchmark": [...]}
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE holdout_evaluations IS
    'The holdout result of a cycle''s chosen strategy: reported, never fed back or ranked.';
CREATE INDEX IF NOT EXISTS holdout_session_idx ON holdout_evaluations (session_id);

CREATE TABLE IF NOT EXISTS assessments (
    assessment_id text PRIMARY KEY,
    session_id    text NULL,
    iteration     integer NOT NULL DEFAULT 0,
    strategy_id   text NOT NULL REFERENCES strategies (strategy_id),
    backtest_id   text NULL REFERENCES backtests (backtest_id),
    assessment    jsonb NOT NULL,  -- Assessment
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE assessments IS 'The assessor''s verdict on a backtest (Assessment in assessment).';
CREATE INDEX IF NOT EXISTS assessments_session_idx ON assessments (session_id, iteration);

-- ===================================================================================
-- Budget (seed 002): one daily budget per scope, reserved before every LLM call
-- ===================================================================================

CREATE TABLE IF NOT EXISTS agent_budget (
    scope        text NOT NULL,  -- research, optimizer
    day          date NOT NULL,  -- UTC day
    cap_usd      numeric NOT NULL CHECK (cap_usd >= 0),
    spent_usd    numeric NOT NULL DEFAULT 0 CHECK (spent_usd >= 0),
    reserved_usd numeric NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0),
    -- Spend that a settled call reported beyond what was left under the cap (a call that
    -- cost more than its reservation). Kept apart so the cap check below stays true and
    -- the ledger still shows every cent.
    overrun_usd  numeric NOT NULL DEFAULT 0 CHECK (overrun_usd >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, day),
    -- The last line of defence: no code path can commit more than the cap.
    CONSTRAINT agent_budget_within_cap CHECK (spent_usd + reserved_usd <= cap_usd)
);
COMMENT ON TABLE agent_budget IS
    'Daily budget per scope. cap_usd is the configured budget minus the safety buffer; '
    'reserved_usd is held by calls under way, spent_usd by settled calls.';

CREATE TABLE IF NOT EXISTS budget_reservations (
    reservation_id text PRIMARY KEY,  -- idempotency key: made by the caller per LLM call
    scope          text NOT NULL,
    day            date NOT NULL,
    amount_usd     numeric NOT NULL CHECK (amount_usd >= 0),
    actual_usd     numeric NULL CHECK (actual_usd >= 0),
    -- denied: the cap did not allow it; kept so a retry gets the same answer.
    status         text NOT NULL CHECK (status IN ('reserved', 'settled', 'denied')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz NULL,
    FOREIGN KEY (scope, day) REFERENCES agent_budget (scope, day)
);
COMMENT ON TABLE budget_reservations IS
    'One row per reserve() call: the amount held, then the actual cost once settled.';
CREATE INDEX IF NOT EXISTS budget_reservations_day_idx ON budget_reservations (scope, day);
CREATE INDEX IF NOT EXISTS budget_reservations_open_idx
    ON budget_reservations (created_at) WHERE status = 'reserved';

-- ===================================================================================
-- Market data
-- ===================================================================================

CREATE TABLE IF NOT EXISTS datasets (
    symbol       text PRIMARY KEY,
    source       text NOT NULL,  -- e.g. arch:sp500, a CSV path, synthetic:<seed>
    rows         integer NOT NULL,
    first_ts     timestamptz NULL,
    last_ts      timestamptz NULL,
    content_hash text NOT NULL,  -- sha256 of the bars, to tell re-imports apart
    imported_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE datasets IS 'Imported OHLCV data sets, one per symbol; bars in market_bars.';

CREATE TABLE IF NOT EXISTS market_bars (
    symbol text NOT NULL REFERENCES datasets (symbol) ON DELETE CASCADE,
    ts     timestamptz NOT NULL,
    open   double precision NOT NULL,
    high   double precision NOT NULL,
    low    double precision NOT NULL,
    close  double precision NOT NULL,
    volume double precision NULL,  -- null where the source has none
    PRIMARY KEY (symbol, ts)
);
COMMENT ON TABLE market_bars IS 'OHLCV bars of a data set, replaced as a whole on re-import.';

-- ===================================================================================
-- Skill library (seeds 000, 004): strategies that passed every gate, kept for reuse
-- ===================================================================================

CREATE TABLE IF NOT EXISTS skills (
    skill_id    text PRIMARY KEY,
    -- One skill per strategy: recording the same success again (a retried activity,
    -- a replayed workflow) keeps the first row.
    strategy_id text NOT NULL UNIQUE REFERENCES strategies (strategy_id),
    session_id  text NULL,
    symbol      text NOT NULL,
    kind        text NOT NULL,
    name        text NOT NULL,
    spec        jsonb NOT NULL,                    -- StrategySpec
    code        text NULL,                         -- kind code: the source, for reading
    params      jsonb NOT NULL DEFAULT '{}',       -- the parameters training chose
    metrics     jsonb NOT NULL,                    -- out-of-sample BacktestMetrics
    score       double precision NOT NULL,         -- out-of-sample Sharpe, for ranking
    tags        text[] NOT NULL DEFAULT '{}',      -- symbol, kind, regime (trend...)
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE skills IS
    'Skill library: strategies that passed every gate, with their out-of-sample metrics. '
    'Retrieval (SkillRepo.relevant) ranks same symbol > same kind > same regime tag, then '
    'score; the designer sees the top few as data in its prompt.';
CREATE INDEX IF NOT EXISTS skills_symbol_idx ON skills (symbol, score DESC);
CREATE INDEX IF NOT EXISTS skills_kind_idx ON skills (kind, score DESC);
CREATE INDEX IF NOT EXISTS skills_tags_idx ON skills USING gin (tags);

-- ===================================================================================
-- Prompt evolution (seed 003): benchmark tasks, regression experiments, generations
-- ===================================================================================

CREATE TABLE IF NOT EXISTS benchmarks (
    task_id         text PRIMARY KEY,
    suite_version   integer NOT NULL DEFAULT 1,
    symbol          text NOT NULL,
    kind            text NULL,  -- null: the designer picks rules, ml or code
    start_date      date NOT NULL,
    end_date        date NOT NULL,
    regime          text NOT NULL,
    objective       text NOT NULL,
    description     text NOT NULL DEFAULT '',
    criteria        jsonb NOT NULL DEFAULT '[]',  -- list of Criterion
    -- sha256 of the task's canonical JSON: how a re-load tells "same task" from "changed".
    definition_hash text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT benchmarks_dates_ordered CHECK (start_date < end_date)
);
COMMENT ON TABLE benchmarks IS
    'Benchmark tasks of the regression suite (BenchmarkTask). A task id names one '
    'definition forever, so results stay comparable across generations: re-loading it is a '
    'no-op, a changed definition needs a new task_id. UPDATE is rejected by a trigger.';
CREATE INDEX IF NOT EXISTS benchmarks_suite_idx ON benchmarks (suite_version, task_id);

-- Its own function (not stratlab_reject_mutation): the hint says what to do instead.
CREATE OR REPLACE FUNCTION stratlab_reject_benchmark_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'benchmarks are immutable: % of task % is not allowed', TG_OP, OLD.task_id
        USING ERRCODE = 'restrict_violation',
              HINT = 'A changed task is a new task: give it a new task_id and suite_version.';
END;
$$;
CREATE OR REPLACE TRIGGER benchmarks_immutable_rows
    BEFORE UPDATE ON benchmarks
    FOR EACH ROW EXECUTE FUNCTION stratlab_reject_benchmark_update();

CREATE TABLE IF NOT EXISTS experiments (
    experiment_id  text PRIMARY KEY,
    prompt_id      text NOT NULL REFERENCES prompts (prompt_id),
    role           text NOT NULL,
    generation     integer NULL,  -- null: a run outside the optimizer (e.g. the CLI)
    task_ids       text[] NOT NULL DEFAULT '{}',
    task_set_hash  text NOT NULL DEFAULT '',
    rollouts       integer NOT NULL DEFAULT 1 CHECK (rollouts >= 1),
    status         text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'stopped_budget', 'raced_out', 'failed')),
    fitness        jsonb NULL,  -- Fitness, once finished
    stopped_reason text NULL,
    workflow_id    text NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz NULL
);
-- Databases created before racing gain its status here (raced_out: stopped early, once
-- the prompt was dominated by prod with confidence).
ALTER TABLE experiments DROP CONSTRAINT IF EXISTS experiments_status_check;
ALTER TABLE experiments ADD CONSTRAINT experiments_status_check
    CHECK (status IN ('running', 'completed', 'stopped_budget', 'raced_out', 'failed'));
COMMENT ON TABLE experiments IS
    'Regression runs (ExperimentRecord): one prompt measured on one task set with N '
    'rollouts per task. Created running and finished with a status and a Fitness; a '
    'completed run of the same prompt, task set and rollouts is reused, not repeated.';
-- The reuse lookup: "is there a completed run of this prompt on this task set?"
CREATE INDEX IF NOT EXISTS experiments_reuse_idx
    ON experiments (prompt_id, task_set_hash, rollouts, status);

CREATE TABLE IF NOT EXISTS experiment_results (
    experiment_id text NOT NULL REFERENCES experiments (experiment_id),
    task_id       text NOT NULL REFERENCES benchmarks (task_id),
    rollout       integer NOT NULL DEFAULT 1 CHECK (rollout >= 1),
    prompt_id     text NOT NULL,  -- copied from the experiment for the per-prompt index
    session_id    text NULL,      -- the research cycle that ran the task, if one started
    passed        boolean NOT NULL,
    outcome       text NULL,
    reasons       jsonb NOT NULL DEFAULT '[]',  -- list of strings: why it failed
    metrics       jsonb NULL,  -- BacktestMetrics: walk-forward out-of-sample, never the holdout
    tokens        integer NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    latency_ms    double precision NOT NULL DEFAULT 0,
    cost_usd      numeric NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, task_id, rollout)
);
COMMENT ON TABLE experiment_results IS
    'One row per task and rollout of an experiment (TaskResult): pass/fail with reasons, '
    'the graded score, out-of-sample metrics, tokens, LLM latency and cost. The first write '
    'of a key wins, so a retried activity adds nothing.';
-- The graded task score in [0, 1] (stratlab.evolution.benchmarks.task_score): the
-- deflated Sharpe probability times the share of criteria met, on noise one minus it.
ALTER TABLE experiment_results ADD COLUMN IF NOT EXISTS score double precision NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS experiment_results_prompt_idx
    ON experiment_results (prompt_id, task_id, created_at DESC);

CREATE TABLE IF NOT EXISTS generations (
    role                text NOT NULL,
    generation          integer NOT NULL CHECK (generation >= 0),
    campaign_id         text NOT NULL DEFAULT '',
    seed                bigint NOT NULL,  -- DEAP's random seed: the generation can be replayed
    task_ids            text[] NOT NULL DEFAULT '{}',
    hypervolume         double precision NOT NULL DEFAULT 0,
    archive_hypervolume double precision NOT NULL DEFAULT 0,
    best_success_rate   double precision NOT NULL DEFAULT 0,
    evaluations         integer NOT NULL DEFAULT 0,
    cost_usd            numeric NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    candidates          text[] NOT NULL DEFAULT '{}',
    stopped_reason      text NULL,
    prod_prompt_id      text NULL,
    record              jsonb NOT NULL,  -- the whole GenerationRecord
    started_at          timestamptz NULL,
    finished_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role, generation)
);
COMMENT ON TABLE generations IS
    'One row per NSGA-II generation of a role (GenerationRecord in record; the columns are '
    'copies for listing). Written once when the generation ends; the first write wins.';
CREATE INDEX IF NOT EXISTS generations_finished_idx ON generations (finished_at DESC);

-- --- paper trading (seed 001) ----------------------------------------------------------------

CREATE TABLE IF NOT EXISTS paper_strategies (
    strategy_id     text PRIMARY KEY,
    name            text NOT NULL,
    symbols         text[] NOT NULL DEFAULT '{}',
    prompt_id       text NULL REFERENCES prompts (prompt_id),
    skill_id        text NULL,  -- a skill's id; not a foreign key, so a skill can be retired
    config          jsonb NOT NULL DEFAULT '{}',  -- GuardrailConfig and the run options
    status          text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'paused', 'stopped', 'error')),
    initial_capital numeric NOT NULL CHECK (initial_capital > 0),
    workflow_id     text NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE paper_strategies IS
    'Paper-trading strategies (one PaperTradingWorkflow each): what they trade, with which '
    'prompt or skill and guardrails, and their status. Created once; a retry keeps the '
    'first row and only the status changes afterwards.';
CREATE INDEX IF NOT EXISTS paper_strategies_created_idx ON paper_strategies (created_at);

CREATE TABLE IF NOT EXISTS paper_books (
    strategy_id text PRIMARY KEY REFERENCES paper_strategies (strategy_id),
    cycle       integer NOT NULL CHECK (cycle >= 0),  -- the last applied decision cycle
    state       jsonb NOT NULL,                       -- PaperBook.model_dump(mode="json")
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE paper_books IS
    'The paper book (cash, positions, fills) of each strategy after its last applied '
    'cycle. A write only replaces an older cycle, so a retried activity of a past cycle '
    'never rolls the book back.';

CREATE TABLE IF NOT EXISTS paper_history (
    strategy_id  text NOT NULL REFERENCES paper_strategies (strategy_id),
    record_id    text NOT NULL,  -- kind:reference_id, the retry key
    ts           timestamptz NOT NULL,
    kind         text NOT NULL
        CHECK (kind IN ('features', 'compose', 'instructions', 'execution')),
    reference_id text NOT NULL,  -- the compose_id of the cycle
    payload      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Per strategy: compose ids need only be unique within their strategy.
    PRIMARY KEY (strategy_id, record_id)
);
COMMENT ON TABLE paper_history IS
    'History records of the paper strategies (HistoryRecord): per cycle its features, '
    'compose (with audit metadata), instructions and execution. The first write of a '
    'record id wins, so a retried activity adds nothing; the digest is rebuilt from here.';
CREATE INDEX IF NOT EXISTS paper_history_ts_idx ON paper_history (strategy_id, ts);

CREATE TABLE IF NOT EXISTS paper_equity (
    strategy_id text NOT NULL REFERENCES paper_strategies (strategy_id),
    ts          timestamptz NOT NULL,
    total_value double precision NOT NULL,
    cash        double precision NOT NULL,
    benchmark   double precision NULL,  -- buy-and-hold value at ts, when known
    PRIMARY KEY (strategy_id, ts)
);
COMMENT ON TABLE paper_equity IS
    'Portfolio value series of each paper strategy (and its buy-and-hold benchmark), one '
    'point per bar; the first write of a point wins.';

-- ===================================================================================
-- LLM response cache (optional: STRATLAB_LLM_CACHE=1)
-- ===================================================================================

CREATE TABLE IF NOT EXISTS llm_cache (
    cache_key  text PRIMARY KEY,  -- sha256 hex of the call's canonical JSON (stratlab.llm.cache)
    provider   text NOT NULL,
    model      text NOT NULL,
    role       text NOT NULL,
    response   jsonb NOT NULL,    -- the LlmResponse as first answered (an LlmResponse DTO)
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE llm_cache IS
    'Answers of LLM calls by the exact request (provider, model, system, prompt, output '
    'schema, temperature, output-token cap). Only complete answers are stored; the first '
    'write of a key wins. A cached answer is replayed at no cost (agent_actions.cached).';

-- ===================================================================================
-- Which schema.sql this database holds
-- ===================================================================================

-- apply_schema records the sha256 of the file it applied. A process whose schema.sql has
-- the same digest skips the DDL, so the application role (which owns no table and so may
-- not run it) can start; a different digest means the owner must run `stratlab setup`.
CREATE TABLE IF NOT EXISTS schema_version (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    digest     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE schema_version IS
    'One row: the sha256 hex of the schema.sql last applied, and when.';
