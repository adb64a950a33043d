"""pyproject.toml declares what requirements.txt pins, for every platform, and a resolver accepts
the pins for the platforms researchers use (pip judges markers only for the running Python, so
uv resolves for the others)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_EXTRA = {'pytest', 'uv'}
OPTIONAL_EXTRAS = {'wandb'}  # extras pinned in requirements.txt, not runtime dependencies
# sys_platform, platform_machine of the platforms uv resolves for below.
PLATFORMS = {'aarch64-apple-darwin': ('darwin', 'arm64'),
             'aarch64-unknown-linux-gnu': ('linux', 'aarch64'),
             'x86_64-unknown-linux-gnu': ('linux', 'x86_64')}


def canonical(name: str) -> str:
  return re.sub(r'[-_.]+', '-', name).lower()


def declared() -> list[Requirement]:
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    return [Requirement(r) for r in tomllib.load(f)['project']['dependencies']]


def pinned() -> list[Requirement]:
  with open(os.path.join(ROOT, 'requirements.txt')) as f:
    lines = [line.split(' #')[0].strip() for line in f]
  return [Requirement(line) for line in lines if line and not line.startswith('#')]


def applies(req: Requirement, sys_platform: str, machine: str) -> bool:
  env = {'sys_platform': sys_platform, 'platform_machine': machine, 'python_version': '3.11',
         'platform_system': {'darwin': 'Darwin', 'linux': 'Linux', 'win32': 'Windows'}[sys_platform]}
  return req.marker is None or req.marker.evaluate(env)


@pytest.mark.parametrize('sys_platform,machine', [*PLATFORMS.values(), ('win32', 'AMD64')])
def test_every_dependency_is_pinned_once_per_platform(sys_platform, machine):
  wants = {canonical(r.name) for r in declared() if applies(r, sys_platform, machine)}
  pins = [canonical(r.name) for r in pinned() if applies(r, sys_platform, machine)]
  assert len(pins) == len(set(pins)), pins
  assert all(str(r.specifier).startswith('==') for r in pinned()), 'the lock pins exact versions'
  optional = TEST_EXTRA | OPTIONAL_EXTRAS
  assert wants == set(pins) - optional - {'jaxlib'}, (wants ^ (set(pins) - optional))


def test_tensorflow_build_per_platform():
  def tf(sys_platform, machine):
    return {r.name for r in declared() if r.name.startswith('tensorflow')
            and r.name != 'tensorflow-datasets' and applies(r, sys_platform, machine)}
  assert tf('linux', 'x86_64') == tf('win32', 'AMD64') == {'tensorflow-cpu'}
  assert tf('darwin', 'arm64') == tf('linux', 'aarch64') == {'tensorflow'}
  onednn = {r.name for r in declared() if r.name.startswith('onednn')}
  for sys_platform, machine in [('darwin', 'arm64'), ('linux', 'aarch64'), ('win32', 'AMD64')]:
    assert not onednn & {r.name for r in declared() if applies(r, sys_platform, machine)}


def test_extras_and_console_script():
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    project = tomllib.load(f)['project']
  jax_pin = next(r for r in pinned() if r.name == 'jax').specifier
  for extra in ('cuda12', 'cuda13'):
    (req,) = map(Requirement, project['optional-dependencies'][extra])
    assert req.name == 'jax' and req.extras == {extra} and req.specifier == jax_pin
  assert {canonical(Requirement(r).name) for r in project['optional-dependencies']['test']} == TEST_EXTRA
  for extra in OPTIONAL_EXTRAS:  # pinned as the lock pins it
    (req,) = map(Requirement, project['optional-dependencies'][extra])
    assert req.specifier == next(r for r in pinned() if canonical(r.name) == extra).specifier
  assert project['scripts']['resnet-flax-train'] == 'resnet_flax.train_cli:run'


def pypi_reachable() -> bool:
  try:
    socket.create_connection(('pypi.org', 443), timeout=5).close()
    return True
  except OSError:
    return False


@pytest.mark.slow
@pytest.mark.parametrize('platform', PLATFORMS)
def test_lock_resolves_for(platform):
  uv = shutil.which('uv', path=os.path.dirname(sys.executable)) or shutil.which('uv')
  if not uv:
    pytest.skip('uv is not installed (pip install -e .[test] brings it)')
  if not pypi_reachable():
    pytest.skip('PyPI is not reachable')
  result = subprocess.run(
      [uv, 'pip', 'compile', 'pyproject.toml', '--extra', 'test', '-c', 'requirements.txt',
       '--python-platform', platform, '--python-version', '3.11', '--no-header', '-q'],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  resolved = dict(re.findall(r'^([A-Za-z0-9_.-]+)==(\S+)', result.stdout, re.M))
  resolved = {canonical(k): v for k, v in resolved.items()}
  sys_platform, machine = PLATFORMS[platform]
  for req in pinned():
    if applies(req, sys_platform, machine) and canonical(req.name) in resolved:
      assert req.specifier.contains(resolved[canonical(req.name)]), (req, resolved[canonical(req.name)])
  want_tf = 'tensorflow-cpu' if machine == 'x86_64' else 'tensorflow'
  assert want_tf in resolved and ({'tensorflow', 'tensorflow-cpu'} - {want_tf}).isdisjoint(resolved)
