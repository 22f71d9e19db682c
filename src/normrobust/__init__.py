"""normrobust: do normalisation layers make networks lean on non-robust features?"""

__version__ = "0.2.0"
