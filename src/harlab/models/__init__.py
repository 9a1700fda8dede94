"""Network architectures, one per module, built by name through the registry.

A new model is one module that decorates its builder with `harlab.models.registry.register`, plus one import
line below; every registered model is then listed, built, trained and exported by the tests.
"""

from harlab.models import (  # noqa: F401  (each module registers its architecture on import)
    cnn,
    cnn_lstm,
    conv_transformer,
    convlstm,
    inceptiontime,
    lstm,
    minirocket,
    multihead_cnn,
    resnet1d,
    wisdm_cnn,
)
