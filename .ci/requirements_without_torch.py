"""Print gradcheck's requirements and its test extra, less torch: what the torch-free part of
the suite installs (.ci/run, and the workflow's job without torch). Needs Python 3.11+."""

import sys

import tomllib

path = sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"
with open(path, "rb") as f:
    project = tomllib.load(f)["project"]
for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
    if not requirement.startswith("torch"):
        print(requirement)
