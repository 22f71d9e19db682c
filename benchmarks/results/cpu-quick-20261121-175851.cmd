python -m normrobust.bench --quick
