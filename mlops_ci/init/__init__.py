"""What `mlops-ci init` and `mlops-ci demo` put into a repository.

`adopt` decides the settings and CI files for an existing DVC project, `adopt_gitlab` what to add
to a `.gitlab-ci.yml` it keeps, `settings_merge` merges them into an existing `mlops-ci.yaml`, and
`scaffold` lays out the reference project.
"""
