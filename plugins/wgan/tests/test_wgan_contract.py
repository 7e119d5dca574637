"""The WGAN plugin's components pass gankit's contract suite."""

from gankit.testing import contract_suite

TestWGANContract = contract_suite("gankit-wgan")
