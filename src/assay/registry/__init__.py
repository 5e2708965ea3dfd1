"""assay.registry"""
