"""Registry: GTO version and stage tags, the deployable bundle, deploy targets and deploys."""
