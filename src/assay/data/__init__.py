"""assay.data"""
