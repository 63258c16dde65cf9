"""``python -m rewardshare.cli``: the same as the ``rewardshare`` command."""

from rewardshare.cli import app

app(prog_name="rewardshare")
