"""The AST pre-filter: honest code passes, each rule rejects with its name and line."""

from __future__ import annotations

import pickle

import pytest

from stratlab.models.research import ParamRange, StrategySpec
from stratlab.sandbox.validator import CodeValidationError, find_violations, validate_code
from stratlab.strategies.validation import StrategyValidationError, validate_spec

HONEST = '''\
import math

import numpy as np
import pandas as pd


def _helper(series, window):
    return series.rolling(window).mean()


def signals(data, params):
    """SMA cross with a volatility filter."""
    close = data["close"]
    fast = _helper(close, int(params["fast"]))
    slow = close.ewm(span=int(params["slow"]), adjust=False).mean()
    vol = close.pct_change().rolling(20).std() * math.sqrt(252)
    calm = (vol < 0.4).to_numpy()
    above = (fast > slow).to_numpy()
    entries = above & ~np.roll(above, 1) & calm
    exits = pd.Series(~above, index=data.index).fillna(False)
    label = f"{params['fast']:.0f}/{params['slow']:.0f}"
    _ = [x for x in label]
    return entries, exits
'''


def wrap(body: str) -> str:
    """``body`` plus a valid signals function, so only the body's violation shows."""
    tail = "def signals(data, params):\n    return data['close'] > 0, data['close'] < 0\n"
    return f"{body}\n\n{tail}"


def rules_of(source: str) -> list[str]:
    return [v.rule for v in find_violations(source)]


def test_honest_code_passes() -> None:
    validate_code(HONEST)


@pytest.mark.parametrize(
    ("snippet", "rule"),
    [
        ("import os", "import-not-allowed"),
        ("import numpy, subprocess", "import-not-allowed"),
        ("from importlib import import_module", "import-not-allowed"),
        ("from . import x", "import-not-allowed"),
        ("from math import *", "import-not-allowed"),
        ("import numpy.ctypeslib", "forbidden-api"),
        ("from numpy import load", "forbidden-api"),
        ("from numpy import _core", "no-private-attribute"),
        ("x = (1).__class__", "no-dunder-attribute"),
        ("x = ().__class__.__bases__[0].__subclasses__()", "no-dunder-attribute"),
        ("x = __builtins__", "no-dunder-name"),
        ("x = __import__('os')", "forbidden-name"),
        ("x = [].__len__", "no-dunder-attribute"),
        ("import pandas as pd\nx = pd._libs", "no-private-attribute"),
        ("f = getattr", "forbidden-name"),
        ("x = getattr(1, 'real')", "forbidden-name"),
        ("setattr(1, 'a', 2)", "forbidden-name"),
        ("eval('1')", "forbidden-name"),
        ("exec('x = 1')", "forbidden-name"),
        ("compile('1', 'f', 'eval')", "forbidden-name"),
        ("open('/etc/passwd')", "forbidden-name"),
        ("g = globals()", "forbidden-name"),
        ("v = vars()", "forbidden-name"),
        ("input()", "forbidden-name"),
        ("breakpoint()", "forbidden-name"),
        ("def g():\n    yield 1\nx = g().gi_frame.f_back", "no-introspection"),
        ("try:\n    1 / 0\nexcept Exception as e:\n    f = e.__traceback__", "no-dunder-attribute"),
        ("try:\n    1 / 0\nexcept Exception as e:\n    e.with_traceback(None)", "no-introspection"),
        ("x = int.mro()", "no-introspection"),
        ("s = '__class__'", "dunder-string"),
        ("s = b'__globals__'", "dunder-string"),
        ("s = '{0.real}'.format(1)", "format-attribute"),
        ("s = '{x[0]}'.format(x=[1])", "format-attribute"),
        ("import pandas as pd\nd = pd.read_csv('x.csv')", "forbidden-api"),
        ("import pandas as pd\npd.DataFrame().to_csv('x.csv')", "forbidden-api"),
        ("import pandas as pd\npd.DataFrame().to_pickle('x')", "forbidden-api"),
        ("import pandas as pd\npd.Series([1]).to_string(buf='x')", "forbidden-api"),
        ("import numpy as np\nnp.fromfile('x')", "forbidden-api"),
        ("import numpy as np\nnp.zeros(3).tofile('x')", "forbidden-api"),
        ("import numpy as np\nnp.save('x', 1)", "forbidden-api"),
        ("import numpy as np\nnp.load('x')", "forbidden-api"),
        ("import numpy as np\nnp.memmap('x')", "forbidden-api"),
        ("import numpy as np\nnp.zeros(3).ctypes", "forbidden-api"),
        ("import numpy as np\nnp.lib.npyio.NpzFile", "forbidden-api"),
        ("import pandas as pd\npd.eval('1 + 1')", "forbidden-api"),
        ("import pandas as pd\npd.DataFrame().query('a > 1')", "forbidden-api"),
        ("import pandas as pd\npd.io.common", "forbidden-api"),
        ("import numpy as np\nnp.testing", "forbidden-api"),
        ("def __init__(x):\n    return x", "no-dunder-name"),
        ("def f(__x__):\n    return 1", "no-dunder-name"),
        ("f = lambda __a__: 1", "no-dunder-name"),
    ],
)
def test_each_rule_rejects_with_its_name(snippet: str, rule: str) -> None:
    with pytest.raises(CodeValidationError) as caught:
        validate_code(wrap(snippet))
    assert rule in [v.rule for v in caught.value.violations], caught.value


def test_class_patterns_read_attributes_and_are_checked_like_them() -> None:
    validate_code(wrap("match 1:\n    case int(real=r):\n        pass"))
    assert "no-private-attribute" in rules_of(wrap("match 1:\n    case int(_x=r):\n        pass"))
    assert "no-introspection" in rules_of(wrap("match 1:\n    case int(f_back=r):\n        pass"))


def test_error_names_rule_and_line_for_the_designer() -> None:
    source = "import os\n\ndef signals(data, params):\n    x = data.__class__\n    return x, x\n"
    with pytest.raises(CodeValidationError) as caught:
        validate_code(source)
    text = str(caught.value)
    assert "line 1 [import-not-allowed]: import of 'os' is not allowed" in text
    assert "line 4 [no-dunder-attribute]: attribute '__class__' is not allowed" in text
    assert text.index("line 1") < text.index("line 4")  # ordered by line
    assert [v.line for v in caught.value.violations] == [1, 4]


def test_syntax_error_is_a_violation_with_its_line() -> None:
    violations = find_violations("def signals(data, params):\n    return (data\n")
    assert [v.rule for v in violations] == ["syntax"]
    assert violations[0].line >= 2
    assert find_violations("x = 1\x00")[0].rule == "syntax"


def test_signals_function_is_required_with_two_arguments() -> None:
    assert rules_of("def signal(data, params):\n    pass\n") == ["signals-function"]
    assert rules_of("def signals(data):\n    pass\n") == ["signals-function"]
    assert rules_of("class S:\n    def signals(self, data, params):\n        pass\n") == [
        "signals-function"
    ]
    validate_code("def signals(*args):\n    return args\n")


def test_overlong_source_fails_fast() -> None:
    assert rules_of(wrap("x = 1\n" * 20_000)) == ["too-long"]


def test_every_violation_is_reported_not_just_the_first() -> None:
    source = wrap("import os\nimport sys\nx = eval\ny = ().__class__")
    assert sorted(rules_of(source)) == sorted(
        ["import-not-allowed", "import-not-allowed", "forbidden-name", "no-dunder-attribute"]
    )


def test_error_survives_pickling() -> None:
    with pytest.raises(CodeValidationError) as caught:
        validate_code("import os")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value) and copy.violations == caught.value.violations


# --- validate_spec for kind code ----------------------------------------------------------


def code_spec(code: str | None, *parameters: str) -> StrategySpec:
    return StrategySpec(
        name="code strategy",
        kind="code",
        code=code,
        parameters=[ParamRange(name=p, low=5, high=20, step=5) for p in parameters],
    )


def test_a_valid_code_spec_passes_without_expressions_or_ml() -> None:
    validate_spec(code_spec(HONEST, "fast", "slow"))


def test_code_is_required() -> None:
    with pytest.raises(StrategyValidationError, match="kind 'code' needs 'code'"):
        validate_spec(code_spec(None, "fast"))
    with pytest.raises(StrategyValidationError, match="kind 'code' needs 'code'"):
        validate_spec(code_spec("   "))


def test_code_violations_are_spec_problems_with_rule_and_line() -> None:
    with pytest.raises(StrategyValidationError) as caught:
        validate_spec(code_spec(HONEST.replace("import math", "import os"), "fast", "slow"))
    assert any(p.startswith("code line 1 [import-not-allowed]") for p in caught.value.problems)


def test_parameters_must_be_read_by_the_code_and_ranges_are_checked() -> None:
    with pytest.raises(StrategyValidationError) as caught:
        validate_spec(code_spec(HONEST, "fast", "slow", "unused"))
    assert caught.value.problems == [
        "parameter 'unused' is never used; read it in the code as params['unused'], or remove it"
    ]
    bad_range = code_spec(HONEST, "fast", "slow")
    bad_range.parameters[0] = ParamRange(name="fast", low=10, high=5)
    with pytest.raises(StrategyValidationError, match="low 10 above high 5"):
        validate_spec(bad_range)
    with pytest.raises(StrategyValidationError, match="the limit is 3"):
        validate_spec(code_spec(HONEST, "fast", "slow"), max_grid_size=3)


def test_a_syntax_error_is_reported_once() -> None:
    with pytest.raises(StrategyValidationError) as caught:
        validate_spec(code_spec("def signals(data, params)\n    pass\n", "fast"))
    assert len(caught.value.problems) == 1 and "[syntax]" in caught.value.problems[0]
