"""The runnable examples of the public docstrings run and print what they show."""

import doctest
import inspect
import warnings

import pytest

import skdeepcluster

PUBLIC = [getattr(skdeepcluster, name) for name in skdeepcluster.__all__
          if inspect.isclass(getattr(skdeepcluster, name))]


@pytest.mark.parametrize("obj", PUBLIC, ids=lambda obj: obj.__name__)
def test_docstring_examples(obj):
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(obj, obj.__name__, globs={})
    if obj.__doc__ and ">>>" in obj.__doc__:
        assert tests and tests[0].examples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for test in tests:
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
