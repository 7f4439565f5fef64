"""What the browser tests share: the results the pipeline wrote (two refs), and where they are served."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pymongo

DB = "ui_results"
EVENT = "Test_Day_2"
BRANCH = "feat/efficiency"
BRANCH_CONFIG = "[efficiency]\nwindow_s = 120.0\n"
HOST = "track-laptop"  # the agent host the refs page shows
POOL = "ui-tests"


@dataclass
class Stack:
    url: str
    db: pymongo.database.Database
    prefect_url: str
    runs: dict[str, dict]  # ref -> the flow's summary
    shots: Path
    heads: dict[str, str]  # ref -> its head commit in the pipeline repository
