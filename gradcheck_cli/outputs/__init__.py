"""Outputs of a Report: the shared verdict texts, then one module per format.

`text` (rich tables), `junit` (JUnit XML), `github` (annotations and a Markdown step
summary), `notebook` (Jupyter display), `heatmap` (--show), `inspection` (inspect).
"""
