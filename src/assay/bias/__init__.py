"""assay.bias"""
