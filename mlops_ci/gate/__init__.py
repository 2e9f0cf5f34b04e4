"""Gate: read the policy at the baseline, apply its rules to a comparison and write the verdict."""
