"""Teachers: any ASE calculator, with built-in GFN2-xTB and SevenNet-0, and a label cache."""
