"""Ant morphology's oracle: build the Ant from a design with ``mujoco``, roll out Design-Bench's policy.

A design is four legs of 15 numbers (morphing-agents 1.5.1's ``LEG``): the leg's mount position
``x, y, z`` and orientation ``a, b, c`` (degrees) on the torso, the centre and half-range of the
hip, thigh and ankle joints (degrees), and the hip, thigh and ankle segment lengths. Design-Bench
clips each leg to ``LEG_LOWER`` / ``LEG_UPPER`` and builds the robot: a sphere torso with a free
joint, and per leg three capsules hinged on axes ``(-1, 1, 0)``, ``(0, 0, 1)``, ``(-1, 1, 0)``, each
joint driven by a motor of gear 150 and control range [-1, 1] (RK4, timestep 0.01, frame skip 5).

The policy, ``ant_morphology/ant_oracle.pkl``, is a dict of numpy arrays
``base_network.network.{0,2,4}.{weight,bias}`` (PyTorch layout): ReLU, ReLU, then ``tanh`` of the
first half of the output is the action. Its observation is ``qpos[2:], qvel, clip(cfrc_ext, -1,
1)`` and the design scaled to [-1, 1]; the reward is forward velocity - 0.5 |a|^2 - 0.5e-3
|clip(cfrc_ext)|^2 + 1; one 100-step rollout from the model's initial state (no noise).

``cfrc_ext`` is left as ``mj_step`` leaves it: zero, as MuJoCo 2.0 under mujoco-py also left it
(MuJoCo fills it only on request since 2.0), so the policy sees what it was trained on. The XML
drops morphing-agents' ``coordinate="local"``, which MuJoCo 2.3.3 removed (local is the only mode).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from lightning_matchopt.errors import OracleError

LEG_FIELDS = (
    "x", "y", "z", "a", "b", "c",
    "hip_center", "hip_range", "thigh_center", "thigh_range", "ankle_center", "ankle_range",
    "hip_size", "thigh_size", "ankle_size",
)  # fmt: skip
LEG_LOWER = np.array([-0.1, -0.1, -0.1, -180, -180, -180, -180, 5, -180, 5, -180, 5, 0.1, 0.1, 0.2])
LEG_UPPER = np.array([0.1, 0.1, 0.1, 180, 180, 180, 180, 45, 180, 45, 180, 45, 0.4, 0.4, 0.8])
DEFAULT_DESIGN = np.concatenate(
    [[0, 0, 0, 0, 0, c, 0, 5, 0, 30, 50, 20, 0.2, 0.2, 0.4] for c in (0, 90, 180, -90)]
).astype(np.float64)
N_LEGS = 4
HORIZON = 100
FRAME_SKIP = 5
POLICY_KEYS = tuple(f"base_network.network.{i}.{kind}" for i in (0, 2, 4) for kind in ("weight", "bias"))


def clip_legs(design: np.ndarray) -> np.ndarray:
    """The design as Design-Bench uses it: ``(4, 15)`` legs clipped to their bounds."""
    design = np.asarray(design, dtype=np.float64).reshape(-1)
    if design.size != N_LEGS * len(LEG_FIELDS):
        raise OracleError(f"ant: a design must hold {N_LEGS * len(LEG_FIELDS)} numbers, got {design.size}")
    return np.clip(design.reshape(N_LEGS, len(LEG_FIELDS)), LEG_LOWER, LEG_UPPER)


def normalized_design(legs: np.ndarray) -> np.ndarray:
    """The design scaled to [-1, 1] per field: the part of the observation that tells the policy its body."""
    return (2 * (legs - LEG_LOWER) / np.maximum(LEG_UPPER - LEG_LOWER, 1e-5) - 1).reshape(-1)


def ant_xml(design: np.ndarray) -> str:
    """MJCF of the Ant a design describes."""
    legs, bodies, motors = clip_legs(design), [], []
    for i, leg in enumerate(legs):
        f = dict(zip(LEG_FIELDS, leg, strict=True))
        hip, thigh, ankle = f["hip_size"], f["thigh_size"], f["ankle_size"]

        def joint_range(name: str, f: dict = f) -> str:
            return f'{f[name + "_center"] - f[name + "_range"]:.9g} {f[name + "_center"] + f[name + "_range"]:.9g}'

        bodies.append(f"""
      <body name="leg_{i}_body" pos="{f['x']:.9g} {f['y']:.9g} {f['z']:.9g}" euler="{f['a']:.9g} {f['b']:.9g} {f['c']:.9g}">
        <geom name="leg_{i}_geom" type="capsule" size="0.08" fromto="0 0 0 {hip:.9g} {hip:.9g} 0"/>
        <body name="thigh_{i}_body" pos="{hip:.9g} {hip:.9g} 0">
          <joint name="hip_{i}_joint" type="hinge" axis="-1 1 0" range="{joint_range('hip')}"/>
          <joint name="thigh_{i}_joint" type="hinge" axis="0 0 1" range="{joint_range('thigh')}"/>
          <geom name="thigh_{i}_geom" type="capsule" size="0.08" fromto="0 0 0 {thigh:.9g} {thigh:.9g} 0"/>
          <body name="ankle_{i}_body" pos="{thigh:.9g} {thigh:.9g} 0">
            <joint name="ankle_{i}_joint" type="hinge" axis="-1 1 0" range="{joint_range('ankle')}"/>
            <geom name="ankle_{i}_geom" type="capsule" size="0.08" fromto="0 0 0 {ankle:.9g} {ankle:.9g} 0"/>
          </body>
        </body>
      </body>""")
        motors += [
            f'<motor joint="{joint}_{i}_joint" ctrllimited="true" ctrlrange="-1 1" gear="150"/>'
            for joint in ("hip", "thigh", "ankle")
        ]
    return f"""<mujoco model="morphing_ant">
  <compiler angle="degree" inertiafromgeom="true"/>
  <option integrator="RK4" timestep="0.01"/>
  <default>
    <joint armature="1" damping="1" limited="true"/>
    <geom conaffinity="0" condim="3" density="5.0" friction="1 0.5 0.5" margin="0.01"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="40 40 40" pos="0 0 0" conaffinity="1" condim="3"/>
    <body name="torso" pos="0 0 1.25">
      <geom name="torso_geom" type="sphere" size="0.25" pos="0 0 0"/>
      <joint name="root" type="free" armature="0" damping="0" limited="false" margin="0.01" pos="0 0 0"/>{''.join(bodies)}
    </body>
  </worldbody>
  <actuator>
    {chr(10).join('    ' + m for m in motors).strip()}
  </actuator>
</mujoco>
"""


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and nothing else: a policy file must not run code."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict"),
    }  # fmt: skip

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a policy file")
        return super().find_class(module, name)


def read_policy_arrays(path: Path, task: str = "ant") -> dict:
    """Design-Bench's policy pickle as a dict of numpy arrays; anything else (code, objects) is refused."""
    try:
        state = _ArraysOnly(io.BytesIO(Path(path).read_bytes())).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError, TypeError) as e:
        raise OracleError(f"{task}: cannot read the policy {str(path)!r}: {e}") from None
    if not isinstance(state, dict) or not state or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise OracleError(f"{task}: the policy {str(path)!r} must be a dict of numpy arrays")
    return state


def load_policy(path: Path) -> list[np.ndarray]:
    """The policy's ``[W0, b0, W1, b1, W2, b2]`` from Design-Bench's pickle, checked for shape."""
    state = read_policy_arrays(path)
    if any(key not in state for key in POLICY_KEYS):
        raise OracleError(f"ant: the policy {str(path)!r} must be a dict with keys {', '.join(POLICY_KEYS)}")
    layers = [np.asarray(state[key], dtype=np.float64) for key in POLICY_KEYS]
    for weight, bias in zip(layers[::2], layers[1::2], strict=True):
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise OracleError(f"ant: the policy {str(path)!r} has a layer of shape {weight.shape} with bias {bias.shape}")
    return layers


def policy_action(layers: list[np.ndarray], observation: np.ndarray) -> np.ndarray:
    """The policy's deterministic action: tanh of the Gaussian head's mean (ReLU hidden layers)."""
    w0, b0, w1, b1, w2, b2 = layers
    hidden = np.maximum(w0 @ observation + b0, 0)
    hidden = np.maximum(w1 @ hidden + b1, 0)
    mean, _log_std = np.split(w2 @ hidden + b2, 2)
    return np.tanh(mean)


def ant_return(design: np.ndarray, layers: list[np.ndarray], horizon: int = HORIZON) -> float:
    """One rollout's summed reward for one design (float32 sum, as Design-Bench); NaN if it diverges."""
    import mujoco

    legs = clip_legs(design)
    model = mujoco.MjModel.from_xml_string(ant_xml(legs))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)  # positions of the initial state, for the first step's velocity
    torso = model.body("torso").id
    body_code = normalized_design(legs)
    dt = model.opt.timestep * FRAME_SKIP

    def observe() -> np.ndarray:
        contact = np.clip(data.cfrc_ext, -1, 1).reshape(-1)
        return np.concatenate([data.qpos[2:], data.qvel, contact, body_code])

    observation = observe()
    if layers[0].shape[1] != observation.size:
        raise OracleError(
            f"ant: the policy expects {layers[0].shape[1]} observations, the built Ant gives {observation.size}"
        )
    total = np.float32(0.0)
    for _ in range(horizon):
        action = policy_action(layers, observation)
        x_before = data.xpos[torso, 0]
        data.ctrl[:] = action
        mujoco.mj_step(model, data, nstep=FRAME_SKIP)
        forward = (data.xpos[torso, 0] - x_before) / dt
        contact = np.clip(data.cfrc_ext, -1, 1)
        reward = forward - 0.5 * np.square(action).sum() - 0.5e-3 * np.square(contact).sum() + 1.0
        total += np.float32(reward)
        observation = observe()
        if not np.isfinite(observation).all():
            return float("nan")
    return float(total)


def ant_returns(designs: np.ndarray, policy_path: Path, horizon: int = HORIZON) -> np.ndarray:
    """Rollout returns of ``(N, 60)`` designs under the policy at ``policy_path``."""
    from tqdm.auto import tqdm

    layers = load_policy(policy_path)
    return np.array([ant_return(d, layers, horizon) for d in tqdm(designs, desc="ant rollouts", leave=False, disable=None)])
