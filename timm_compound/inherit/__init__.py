"""Growing a scaled model from its base's weights so that it starts with the base's function (Net2Net).

- ``api``: the public ``inherit()`` (re-exported as ``timm_compound.inherit``, which is why code imports
  the modules below by their full path) and ``InheritReport``
- ``source``: the base from a model, a safetensors file, a published folder or a Hub repo, checked
- ``trace``: a forward pass under torch's function mode -> ``graph``: which dimensions share channels
  (``shapes``: how channels move through shape ops)
- ``align``: which grown block inherits which base block, stage by stage
- ``mapping``: which base channel each grown channel copies; ``widen``: the tensors grown by it
- ``deepen``: new blocks start as the identity (the rule's ``inherit.identity``)
- ``verify``: the grown model's outputs checked against the base's, and where they first differ
"""
