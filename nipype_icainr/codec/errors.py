"""The one exception type the codec raises for bad input or a bad file."""


class ICAINRError(Exception):
    """A problem with an input or output that a user can fix.

    The message is one line and names the file and the problem; the command-line
    interface prints it as is, without a traceback.
    """

    def __init__(self, path, problem):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")

    def __reduce__(self):
        # pickled with both arguments, so that the error raised in a worker process
        # (the benchmark's children) comes back as itself; the default (the message
        # alone) cannot rebuild it and breaks the process pool instead
        return self.__class__, (self.path, self.problem)


class NonFiniteValues(ICAINRError):
    """The run holds NaN or Inf values that only a bit-for-bit coding keeps (NaN at some
    time points only, or Inf): ``compress(..., lossless=True)`` codes such a float run."""


class OutOfReach(ICAINRError):
    """The requested ratio cannot be reached: what must be stored already exceeds it.

    ``floor_bytes``: the estimated size of the smallest file the encoder could
    write (``Budget.out_of_reach``), infinite when not known; not pickled.
    """

    floor_bytes = float("inf")
