"""The ProGAN plugin's components pass gankit's contract suite."""

from gankit.testing import contract_suite

TestProGANContract = contract_suite("gankit-progan")
