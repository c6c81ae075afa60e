"""The AWS CDK app that deploys Loopmark (deploy/README.md); not part of the loopmark package."""
