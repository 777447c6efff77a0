"""The appliance's eyes: find, align and describe a face.

`FaceAnalyzer` (analyzer.py) runs the pipeline over the modules of one concern each: settings,
model_files, models, detection, face, crops; dlib's face ResNet on numpy's BLAS is resnet.py.
Callers import each name from the module that defines it, so that importing
`appliance.faces.settings` stays cheap.
"""
