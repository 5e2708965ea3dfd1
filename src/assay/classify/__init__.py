"""assay.classify"""
