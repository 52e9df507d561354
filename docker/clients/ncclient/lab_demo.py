#!/usr/bin/env python3
"""The lab's ncclient demo: edits, an action, notifications, and the second server.

    lab-demo          run the demo against $PYVMD_HOST (and $PYVMD2_HOST)
    lab-demo check    check that the demo's committed service instance is in running

Every step prints one line; any failure ends the run with a non-zero status and the reason.
"""

import os
import sys
import time

from lxml import etree
from ncclient import manager
from ncclient.xml_ import to_ele

NCS = "http://tail-f.com/ns/ncs"
DSVC = "http://example.com/pyvmd/demo-service"
TICK = "http://example.com/pyvmd/ticker"
NS = {"ncs": NCS, "dsvc": DSVC, "tick": TICK}

HOST = os.environ.get("PYVMD_HOST", "pyvmd")
PORT = int(os.environ.get("PYVMD_PORT", "830"))
USER = os.environ.get("PYVMD_USER", "admin")
PASSWORD = os.environ.get("PYVMD_PASSWORD", "admin")
HOST2 = os.environ.get("PYVMD2_HOST", "")
PORT2 = int(os.environ.get("PYVMD2_PORT", "830"))
USER2 = os.environ.get("PYVMD2_USER", "admin")
PASSWORD2 = os.environ.get("PYVMD2_PASSWORD", "admin")
# A module the second server loads through NETCONF_MODULES (its name), if any.
MODULE2 = os.environ.get("PYVMD2_MODULE", "")

VLAN_ID = 10
SERVICE = f"""
  <config><services xmlns="{NCS}">
    <vlan-service xmlns="{DSVC}">
      <name>lab</name><vlan-id>{VLAN_ID}</vlan-id><port>ge1</port><port>ge2</port>
    </vlan-service></services></config>"""
TICK_FAST = """
  <config><notification-sources xmlns="urn:pyvmd:notifications"><source>
    <package>ticker</package><component>ticker</component>
    <option><name>interval</name><value>1</value></option>
    <option><name>message</name><value>hello from the lab</value></option>
  </source></notification-sources></config>"""


def step(text):
    print(f"lab-demo: {text}", flush=True)


def fail(text):
    print(f"lab-demo: FAILED: {text}", flush=True)
    sys.exit(1)


def connect(host, port, user, password, wait=60):
    """Connects, retrying while the server starts."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return manager.connect(host=host, port=port, username=user, password=password,
                                   hostkey_verify=False, allow_agent=False,
                                   look_for_keys=False, timeout=30)
        except Exception as e:  # not listening yet, or still starting
            if time.monotonic() > deadline:
                fail(f"cannot connect to {host}:{port}: {e}")
            time.sleep(0.5)


def wait_for_packages(m):
    """Waits until the example VMs have registered what the demo uses."""
    f = ("subtree", f'<python-vm xmlns="{NCS}"><status/></python-vm>')
    deadline = time.monotonic() + 60
    want = ("vlan-service (service)", "demo-ping (action)", "ticker (notification source)")
    while True:
        status = m.get(filter=f).xml
        missing = [w for w in want if w not in status]
        if not missing:
            return
        if time.monotonic() > deadline:
            fail(f"the example packages did not start: {missing} missing\n{status}")
        time.sleep(0.5)


def xml_of(reply):
    return etree.fromstring(reply.xml.encode())


def vlan_ports(m):
    reply = m.get_config("running", filter=("subtree", f'<vlans xmlns="{DSVC}"/>'))
    return reply.data_ele.xpath(
        f"//dsvc:vlan[dsvc:id='{VLAN_ID}']/dsvc:port/text()", namespaces=NS)


def demo():
    m = connect(HOST, PORT, USER, PASSWORD)
    step(f"connected to {HOST}:{PORT} as {USER}, session {m.session_id}, "
         f"{len(list(m.server_capabilities))} capabilities")
    wait_for_packages(m)
    step("the example packages are running")

    # A second session listens to the ticker's stream.
    listener = connect(HOST, PORT, USER, PASSWORD)
    listener.create_subscription(stream_name="ticker")
    step("subscribed to the ticker stream")

    # Edit: the ticker's options (changed live), and a service instance, through the candidate.
    m.edit_config(target="running", config=TICK_FAST)
    step("ticker interval set to 1 s in running")
    with m.locked("candidate"):
        m.discard_changes()
        m.edit_config(target="candidate", config=SERVICE)
        m.commit()
    step(f"committed vlan-service 'lab' (vlan {VLAN_ID}, ports ge1 ge2)")
    ports = vlan_ports(m)
    if sorted(ports) != ["ge1", "ge2"]:
        fail(f"cb_create did not write vlan {VLAN_ID} with its ports: {ports}")
    step(f"the service wrote /vlans/vlan[{VLAN_ID}] with ports {', '.join(sorted(ports))}")

    # An action and an rpc, run by Python code in the demo-actions VM.
    reply = m.dispatch(to_ele("""
      <action xmlns="urn:ietf:params:xml:ns:yang:1">
        <tools xmlns="http://example.com/pyvmd/demo-actions">
          <ping><host>router1.example</host><count>2</count></ping></tools></action>"""))
    result = xml_of(reply).xpath("string(//*[local-name()='result'])")
    if not result:
        fail(f"the ping action gave no result:\n{reply.xml}")
    step(f"action ping: {result}")
    reply = m.dispatch(to_ele(
        '<echo xmlns="http://example.com/pyvmd/demo-actions"><message>hi</message></echo>'))
    echoed = xml_of(reply).xpath("string(//*[local-name()='message'])")
    if not echoed:
        fail(f"the echo rpc gave no message:\n{reply.xml}")
    step(f"rpc echo: {echoed}")

    # Notifications: a tick (from the source, restarted with the new options).
    deadline = time.monotonic() + 30
    while True:
        n = listener.take_notification(timeout=max(0.1, deadline - time.monotonic()))
        if n is None:
            fail("no tick on the ticker stream within 30 s")
        ele = etree.fromstring(n.notification_xml.encode())
        message = ele.xpath("string(//tick:tick/tick:message)", namespaces=NS)
        count = ele.xpath("string(//tick:tick/tick:count)", namespaces=NS)
        if message == "hello from the lab":
            step(f"notification: tick {count} '{message}'")
            break
        if time.monotonic() > deadline:
            fail("no tick with the new message within 30 s")
    listener.close_session()
    m.close_session()

    if HOST2:
        m2 = connect(HOST2, PORT2, USER2, PASSWORD2)
        caps = list(m2.server_capabilities)
        step(f"second server {HOST2}:{PORT2} as {USER2}: session {m2.session_id}, "
             f"{len(caps)} capabilities")
        if MODULE2:
            if not any(f"module={MODULE2}&" in c or c.endswith(f"module={MODULE2}")
                       for c in caps):
                fail(f"{HOST2} does not announce module {MODULE2}:\n" + "\n".join(caps))
            step(f"{HOST2} announces module {MODULE2}")
        m2.close_session()
    step("OK")


def check():
    m = connect(HOST, PORT, USER, PASSWORD)
    ports = vlan_ports(m)
    if sorted(ports) != ["ge1", "ge2"]:
        fail(f"vlan {VLAN_ID} is not in running: {ports}")
    step(f"check: vlan {VLAN_ID} with ports {', '.join(sorted(ports))} is in running")
    m.close_session()


if __name__ == "__main__":
    {"demo": demo, "check": check}[sys.argv[1] if len(sys.argv) > 1 else "demo"]()
