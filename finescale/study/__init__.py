"""finescale.study: what the golden model says about formats and rules, measured.

* :mod:`.mse`: the papers' numerical study, MSE of N(0, sigma^2) blocks (``finescale study``);
* :mod:`.theory`: its analytic expectation;
* :mod:`.plots`: its figures;
* :mod:`.selectors`: every scale selector's accuracy and cost, and their front (``finescale selectors``);
* :mod:`.tradeoff`: accuracy against area over the design space;
* :mod:`.validate` and :mod:`.realdata`: the recipes on real weights and a real model
  (``finescale validate``).
"""
