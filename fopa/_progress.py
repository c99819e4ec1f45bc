"""Progress bars (tqdm, on stderr) for long calls; nothing is shown unless asked."""

from __future__ import annotations

__all__ = ["IterationBar", "iteration_bar"]


class IterationBar:
    """A bar of a run's iterations with the rows still running (a no-op when
    ``label`` is false); a context manager that closes it."""

    def __init__(self, label, total, rows, default="run"):
        self.bar = None
        if label:
            from tqdm import tqdm

            desc = label if isinstance(label, str) else default
            self.bar = tqdm(total=total, unit="it", desc=desc, leave=False)
            self.bar.set_postfix_str(f"{rows} running")

    def tick(self, done, running):
        """``done`` iterations so far, ``running`` rows not yet stopped."""
        if self.bar is not None:
            self.bar.n = min(done, self.bar.total)
            self.bar.set_postfix_str(f"{running} running", refresh=False)
            self.bar.refresh()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


def iteration_bar(progress, total, rows, default):
    """An :class:`IterationBar` from a ``progress`` argument (bool or a label)."""
    if not isinstance(progress, (bool, str)):
        raise TypeError(f"progress must be a bool or a label; got {progress!r}")
    return IterationBar(progress, total, rows, default)
