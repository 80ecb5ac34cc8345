"""Config from files and key references: ModelRoute YAML loaded and checked, API keys resolved.

``loader`` turns YAML or JSON files (or a pushed body) into a validated ``SidecarConfig``, reporting
every problem at once; ``secrets`` turns key references into keys (env, rotated files, mounted
Secrets).
"""
