"""Ordinary code of the kind LLMs write, with what it must print and evaluate to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Snippet:
    """Model code and its expected printed output and value (repr, or None)."""

    name: str
    code: str
    stdout: str = ""
    value: str | None = None


# fmt: off
LEGIT: list[Snippet] = [
    Snippet("arithmetic", "x = 17 * 3 + 4\nx", value="55"),
    Snippet("average", "nums = [3, 5, 10]\navg = sum(nums) / len(nums)\nprint(f'{avg:.2f}')",
            stdout="6.00\n"),
    Snippet("statistics-from-import",
            "from statistics import mean, median, stdev\ndata = [2, 4, 4, 4, 5, 5, 7, 9]\n"
            "print(mean(data), median(data), round(stdev(data), 3))", stdout="5 4.5 2.138\n"),
    Snippet("statistics-module", "import statistics\nstatistics.mean([1, 2, 3, 4])",
            value="2.5"),
    Snippet("dates",
            "from datetime import date, timedelta\nd = date(2024, 2, 27) + timedelta(days=3)\n"
            "print(d.isoformat(), d.strftime('%A'))", stdout="2024-03-01 Friday\n"),
    Snippet("datetime-diff",
            "from datetime import datetime\ndelta = datetime(2024, 12, 25) - datetime(2024, 1, 1)"
            "\ndelta.days", value="359"),
    Snippet("strptime",
            "from datetime import datetime\n"
            "datetime.strptime('2024-03-05', '%Y-%m-%d').strftime('%d %b %Y')",
            value="'05 Mar 2024'"),
    Snippet("unit-conversion",
            "def c_to_f(c):\n    return c * 9 / 5 + 32\nresult = [c_to_f(c) for c in (0, 37, 100)]",
            value="[32.0, 98.6, 212.0]"),
    Snippet("percentage",
            "old, new = 80, 92\nchange = (new - old) / old * 100\nprint(f'{change:.1f}%')",
            stdout="15.0%\n"),
    Snippet("fractions", "from fractions import Fraction\nFraction(1, 3) + Fraction(1, 6)",
            value="Fraction(1, 2)"),
    Snippet("numpy-polyfit",
            "import numpy as np\nx = np.array([1, 2, 3, 4])\ny = 2 * x + 1\n"
            "slope, intercept = np.polyfit(x, y, 1)\nprint(round(slope, 6), round(intercept, 6))",
            stdout="2.0 1.0\n"),
    Snippet("linear-trend",
            "import numpy as np\nsales = [100, 110, 120, 130]\n"
            "m, b = np.polyfit(range(4), sales, 1)\nfloat(round(m * 4 + b, 2))", value="140.0"),
    Snippet("numpy-stats",
            "import numpy as np\na = np.array([1.0, 2.0, 3.0, 4.0])\n"
            "print(a.mean(), a.std().round(4), np.percentile(a, 75))", stdout="2.5 1.118 3.25\n"),
    Snippet("numpy-item-assign",
            "import numpy as np\na = np.zeros(3)\na[1] = 5\na[2] += 2\na.tolist()",
            value="[0.0, 5.0, 2.0]"),
    Snippet("numpy-isinstance", "import numpy as np\nisinstance(np.arange(3), np.ndarray)",
            value="True"),
    Snippet("counter", "from collections import Counter\nCounter('mississippi').most_common(2)",
            value="[('i', 4), ('s', 4)]"),
    Snippet("itertools", "import itertools\nlist(itertools.permutations('abc', 2))[:3]",
            value="[('a', 'b'), ('a', 'c'), ('b', 'a')]"),
    Snippet("class-counter",
            "class Tally:\n    def __init__(self):\n        self.n = 0\n    def hit(self):\n"
            "        self.n += 1\n        return self\nt = Tally()\nt.hit().hit().hit()\nt.n",
            value="3"),
    Snippet("class-attribute-counter",
            "class Widget:\n    made = 0\n    def __init__(self):\n        Widget.made += 1\n"
            "Widget()\nWidget()\nWidget.made", value="2"),
    Snippet("dict-augassign",
            "totals = {}\nfor k, v in [('a', 1), ('b', 2), ('a', 3)]:\n"
            "    totals[k] = totals.get(k, 0)\n    totals[k] += v\ntotals",
            value="{'a': 4, 'b': 2}"),
    Snippet("defaultdict",
            "from collections import defaultdict\nd = defaultdict(int)\n"
            "for w in 'a b a'.split():\n    d[w] += 1\ndict(d)", value="{'a': 2, 'b': 1}"),
    Snippet("fstrings",
            "name = 'Ada'\nscore = 0.9876\nprint(f'{name:>5}|{score:.1%}|{1234567:,}')",
            stdout="  Ada|98.8%|1,234,567\n"),
    Snippet("main-guard",
            "def main():\n    print('running')\n\nif __name__ == '__main__':\n    main()",
            stdout="running\n"),
    Snippet("str-format", "'{} has {:d} items costing ${:.2f}'.format('cart', 3, 9.5)",
            value="'cart has 3 items costing $9.50'"),
    Snippet("result-variable", "result = sum(i * i for i in range(10))", value="285"),
    Snippet("math", "import math\nround(math.sqrt(2) * math.pi, 4)", value="4.4429"),
    Snippet("decimal-precision",
            "from decimal import Decimal, getcontext\ngetcontext().prec = 6\n"
            "Decimal(1) / Decimal(7)", value="Decimal('0.142857')"),
    Snippet("heapq-bisect",
            "import heapq, bisect\nh = [5, 1, 4]\nheapq.heapify(h)\nsmallest = heapq.heappop(h)\n"
            "bisect.bisect_left([1, 3, 5], 4), smallest", value="(2, 1)"),
    Snippet("sorted-enumerate",
            "names = ['bob', 'Al', 'cy']\nfor i, n in enumerate(sorted(names, key=str.lower)):\n"
            "    print(i, n)", stdout="0 Al\n1 bob\n2 cy\n"),
    Snippet("dataclass",
            "from dataclasses import dataclass\n@dataclass\nclass Item:\n    name: str\n"
            "    price: float\n    qty: int = 1\n    def total(self):\n"
            "        return self.price * self.qty\nItem('pen', 1.5, 4).total()", value="6.0"),
    Snippet("typing-hints",
            "from typing import List\ndef avg(xs: List[float]) -> float:\n"
            "    return sum(xs) / len(xs)\navg([1.0, 2.0])", value="1.5"),
    Snippet("inheritance-repr",
            "class A:\n    def __init__(self, x):\n        self.x = x\n    def __repr__(self):\n"
            "        return f'A({self.x})'\nclass B(A):\n    def __init__(self, x):\n"
            "        super().__init__(x * 2)\nB(2)", value="A(4)"),
    Snippet("explicit-base-init",
            "class Animal:\n    def __init__(self, name):\n        self.name = name\n"
            "class Dog(Animal):\n    def __init__(self, name):\n"
            "        Animal.__init__(self, name)\n        self.sound = 'woof'\n"
            "class OddError(Exception):\n    def __init__(self, n):\n"
            "        Exception.__init__(self, f'{n} is odd')\n"
            "d = Dog('rex')\ntry:\n    raise OddError(3)\nexcept OddError as e:\n"
            "    msg = str(e)\n(d.name, d.sound, msg)", value="('rex', 'woof', '3 is odd')"),
    Snippet("exception-handling",
            "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    msg = str(e)\nmsg",
            value="'division by zero'"),
    Snippet("json-re",
            "import re, json\n"
            "json.dumps({'n': [int(x) for x in re.findall(r'\\d+', 'a1b22c333')]})",
            value='\'{"n": [1, 22, 333]}\''),
    Snippet("star-unpacking", "first, *rest = [1, 2, 3]\nprint(first, rest)",
            stdout="1 [2, 3]\n"),
    Snippet("compound-interest",
            "principal = 1000\nrate = 0.05\nyears = 10\namount = principal * (1 + rate) ** years\n"
            "print(f'Final amount: ${amount:,.2f}')", stdout="Final amount: $1,628.89\n"),
    Snippet("generator-and-lambda",
            "def evens(n):\n    for i in range(n):\n        if i % 2 == 0:\n            yield i\n"
            "list(map(lambda v: v * 10, evens(7)))", value="[0, 20, 40, 60]"),
    Snippet("numpy-default-rng",
            "import numpy as np\na = np.random.default_rng(42).integers(0, 100, 3).tolist()\n"
            "a == np.random.default_rng(42).integers(0, 100, 3).tolist()", value="True"),
    Snippet("annotated-assignment",
            "total: float = 0.0\nfor p in [1.5, 2.5]:\n    total += p\ntotal", value="4.0"),
    Snippet("slice-augassign", "xs = [1, 2, 3]\nxs[1:] += [9]\nxs", value="[1, 2, 3, 9]"),
    Snippet("print-and-value", "print('trend up')\n2 + 2", stdout="trend up\n", value="4"),
    Snippet("numpy-r-concat", "import numpy as np\nnp.r_[1:3, 7].tolist()", value="[1, 2, 7]"),
    Snippet("functools-wraps",
            "import functools\ndef logged(fn):\n    @functools.wraps(fn)\n"
            "    def inner(*args, **kwargs):\n        print('calling', fn.__name__)\n"
            "        return fn(*args, **kwargs)\n    return inner\n@logged\ndef add(a, b):\n"
            "    \"\"\"Add two numbers.\"\"\"\n    return a + b\n(add(2, 3), add.__name__, add.__doc__)",
            stdout="calling add\n", value="(5, 'add', 'Add two numbers.')"),
    Snippet("update-wrapper",
            "import functools\ndef area(r):\n    \"\"\"Circle area.\"\"\"\n    return 3 * r * r\n"
            "def w(*a):\n    return area(*a)\ndef v(*a):\n    return area(*a)\n"
            "functools.update_wrapper(w, area)\n"
            "functools.update_wrapper(v, area, ('__name__',), [])\n"
            "functools.wraps(area, functools.WRAPPER_ASSIGNMENTS, functools.WRAPPER_UPDATES)(v)\n"
            "(w(2), w.__name__, w.__doc__, v.__qualname__)",
            value="(12, 'area', 'Circle area.', 'area')"),
    Snippet("cached-property",
            "import functools\nclass Circle:\n    def __init__(self, r):\n        self.r = r\n"
            "    @functools.cached_property\n    def area(self):\n        print('computing')\n"
            "        return 3 * self.r ** 2\nc = Circle(2)\n(c.area, c.area)",
            stdout="computing\n", value="(12, 12)"),
    Snippet("total-ordering",
            "import functools\n@functools.total_ordering\nclass V:\n    def __init__(self, n):\n"
            "        self.n = n\n    def __eq__(self, o):\n        return self.n == o.n\n"
            "    def __lt__(self, o):\n        return self.n < o.n\n"
            "(V(1) <= V(2), V(3) >= V(2), sorted([V(2), V(1)])[0].n)",
            value="(True, True, 1)"),
    Snippet("format-receivers",
            "from collections import UserString\n"
            "(UserString('a{}').format(1), UserString('{x}-{y[1]}').format_map({'x': 1, 'y': [1, 2]}),"
            " '{0[1]}'.format([1, 2]), str.format('{:>3}', 7))",
            value="('a1', '1-2', '2', '  7')"),
    Snippet("dataclass-helpers",
            "import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\n"
            "    y: list = dataclasses.field(default_factory=list)\np = P(1, [2])\n"
            "q = dataclasses.replace(p, x=5)\n"
            "(dataclasses.asdict(p), dataclasses.astuple(q), [f.name for f in dataclasses.fields(P)])",
            value="({'x': 1, 'y': [2]}, (5, [2]), ['x', 'y'])"),
    Snippet("namedtuple",
            "from collections import namedtuple\nPoint = namedtuple('Point', 'x y', defaults=[0])\n"
            "p = Point(3)\n(p, p.x + p.y, Point(1, 2) == (1, 2))",
            value="(Point(x=3, y=0), 3, True)"),
    Snippet("regex-flags", "import re\nre.findall(r'^a.', 'ab\\nAc', re.I | re.M)",
            value="['ab', 'Ac']"),
    Snippet("typing-isinstance",
            "import typing\nfrom collections import UserDict\nclass D(UserDict):\n    pass\n"
            "(isinstance({}, typing.Mapping), isinstance([], typing.Mapping), isinstance(D(), dict),"
            " typing.Optional[int])",
            value="(True, False, False, typing.Optional[int])"),
    Snippet("numpy-ndarray-over-buffer",
            "import numpy as np\nraw = np.arange(6, dtype=np.int32)\n"
            "view = np.ndarray((2,), dtype=np.int32, buffer=raw, offset=4, strides=(8,))\n"
            "(view.tolist(), np.ndarray((2, 2), dtype='u1', buffer=bytearray(b'abcd')).tolist(),"
            " np.ndarray(3).shape, len(raw.data))",
            value="([1, 3], [[97, 98], [99, 100]], (3,), 6)"),
    Snippet("numpy-random-generator",
            "import numpy as np\nrng = np.random.default_rng(3)\n"
            "(rng.beta(2, 3, size=4).shape, np.random.RandomState(1).rand(2).shape)",
            value="((4,), (2,))"),
]
# fmt: on

#: A snippet the pool must still answer correctly after every adversarial payload.
HEALTH_CHECK = Snippet(
    "health", "import math\nvalues = [1, 2, 3]\nmath.fsum(values) * 7", value="42.0"
)
