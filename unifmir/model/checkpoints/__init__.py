"""Checkpoint I/O: the official UniFMIR formats, our own format, and conversion between namings.

Official formats (read with :func:`load_official`)
--------------------------------------------------

``unimodel``
    The multi-task pretraining checkpoint (``UniModel`` of the reference ``pretrain`` branch): one
    shared SwinIR body, task heads ``conv_first{sr,dT,iso,proj,v}``, the ENLCN projection head
    ``project.*``, UNetA ``conv_first0.*`` and the tails. Loads into
    :class:`unifmir.model.multitask.UniFMIR` (``.task is None``).
``swinir``
    Released SR / denoise / isotropic checkpoints (``swinir(upscale, in_chans)`` of the ``main``
    branch; files ``swinir_x2_in1``, ``swinir_x1_in1``, ``swinir_x1_in5`` in the key manifest).
``swinirProj_stage2``
    Released projection checkpoint: ENLCN head ``project.*`` + a ``swinir`` refinement under
    ``denoise.*`` (long skip and crop: ``projection_variant="released"``).
``swinir2dto3d``
    Released volumetric checkpoint: UNetA ``conv_first0.*`` + a SwinIR body with a 90->61 tail.

Every one of them may come as a bare ``state_dict`` (what the reference saves), wrapped in
``{'state_dict': ...}`` / ``{'model': ...}`` (and a few other common wrapper keys), with a
DataParallel ``module.`` prefix, or in the compact int8 form of the reference fixtures
(``key_order/plain/q8/q8_exp/alias``; an ``external_keys`` entry names a sibling file that holds
the remaining tensors). The variant is recognised from the key names and *every* size
hyper-parameter is read back from tensor shapes and key counts (:func:`infer_config`), so
checkpoints of any size load without a hand-written configuration. Loading is strict: a mismatch
raises :class:`CheckpointError` listing missing, unexpected and mis-shaped keys.

Task of a released ``swinir`` checkpoint
----------------------------------------
The released files do not say which task they were trained for; the task is chosen from the
upscale factor and the number of input channels, matched against :data:`unifmir.tasks.TASKS`:
``x2 in1 -> sr``, ``x1 in5 -> denoise`` (5 neighbouring slices), ``x1 in1 -> isotropic``.
``x1 in1`` is ambiguous: the released *Planaria denoising* network is also ``x1 in1`` (one slice
in). It defaults to ``isotropic`` because that is the registry task with exactly this input
(the registry's ``denoise`` feeds 5 slices); pass ``task="denoise"`` to load it as a 1-slice
denoiser (its config then records ``in_chans=1``). Any single-body swinir checkpoint can be
loaded as ``sr``, ``denoise`` or ``isotropic`` with ``task=``; the network is the same function.

Our own format (:func:`save_checkpoint` / :func:`load_checkpoint`)
------------------------------------------------------------------
A ``torch.save``'d dict ``{'format': 'unifmir-checkpoint', 'version': 1, 'task', 'config',
'state_dict', 'provenance', 'extra'}`` holding only tensors and JSON-like values, written
atomically and read with ``weights_only=True``. :func:`load_any` accepts either family, and the
bioimage.io bundles ``unifmir export`` writes (:mod:`unifmir.model.bundles`).

Conversion
----------
:func:`key_mapping` describes, per task, how released single-task key prefixes correspond to
UniModel prefixes (README of the fixtures, section 6). :func:`multi_to_single` and
:func:`single_to_multi` apply it; :func:`single_task_config` is the rule for one task's
configuration taken from a multi-task one, and :func:`extract_task` turns a multi-task model into
the single-task network of one task (for projection the UniModel behaviour: no long skip, no crop).

Modules (one job each)
----------------------
* :mod:`.errors` -- :class:`CheckpointError` and the message helpers;
* :mod:`.payload` -- reading files (``weights_only=True``) and unwrapping payloads to a state_dict;
* :mod:`.layouts` -- the official key layouts as data, :func:`detect_variant`, :func:`key_mapping`;
* :mod:`.hparams` -- every size hyper-parameter from the shapes (:func:`infer_config`);
* :mod:`.strict` -- :func:`load_state_dict_strict`;
* :mod:`.convert` -- multi-task <-> single-task keys, configuration and networks;
* :mod:`.own` -- our own format (:func:`save_checkpoint`, :func:`load_checkpoint`);
* :mod:`.loading` -- :func:`load_official`, :func:`load_any`.
"""

from __future__ import annotations

from .convert import extract_task, multi_to_single, single_task_config, single_to_multi
from .errors import CheckpointError
from .hparams import infer_config, infer_hparams
from .layouts import OFFICIAL_VARIANTS, detect_variant, key_mapping, released_variant_name
from .loading import load_any, load_official
from .own import CHECKPOINT_VERSION, load_checkpoint, read_checkpoint, save_checkpoint
from .payload import CHECKPOINT_FORMAT, read_state_dict
from .strict import load_state_dict_strict

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "OFFICIAL_VARIANTS",
    "CheckpointError",
    "detect_variant",
    "extract_task",
    "infer_config",
    "infer_hparams",
    "key_mapping",
    "load_any",
    "load_checkpoint",
    "load_official",
    "load_state_dict_strict",
    "multi_to_single",
    "read_checkpoint",
    "read_state_dict",
    "released_variant_name",
    "save_checkpoint",
    "single_task_config",
    "single_to_multi",
]
