"""The appliance's eyes: find, align and describe a face (`analyzer`), dlib's face ResNet on
numpy's BLAS (`resnet`)."""
