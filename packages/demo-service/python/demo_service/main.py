"""The demo-service package: the vlan-service servicepoint."""

import ncs
from ncs.application import Application, Service
from ncs.dp import ValidationPoint


class VlanService(Service):
    """``/ncs:services/dsvc:vlan-service``: puts the instance's ports into its VLAN."""

    @Service.create
    def cb_create(self, tctx, root, service, proplist):
        self.log.info("cb_create ", service._path, " vlan ", service.vlan_id)
        # FASTMAP: write everything the service needs, every time, unconditionally. Services
        # that share the VLAN also share what they write to it.
        vlan = root.dsvc__vlans.vlan.create(service.vlan_id)
        vlan.name = "vlan-%d" % service.vlan_id
        for port in service.port:
            vlan.port.create(port)
        # Not thread safe: one instance of this class serves every service instance at once.
        # pyvmd reports it (/python-vm/sanity-checks/self-assign-warning).
        self.last_service = service.name
        runs = dict(proplist).get("runs", "0")
        return [("runs", str(int(runs) + 1))]

    @Service.post_modification
    def cb_post_modification(self, tctx, op, kp, root, proplist):
        what = {ncs.dp.NCS_SERVICE_CREATE: "created", ncs.dp.NCS_SERVICE_UPDATE: "updated",
                ncs.dp.NCS_SERVICE_DELETE: "deleted"}[op]
        self.log.info(kp, " ", what)


class PortInOneVlan(ValidationPoint):
    """``port-in-one-vlan``: an access port belongs to one VLAN only."""

    @ValidationPoint.validate
    def cb_validate(self, tctx, kp, newval):
        with ncs.maapi.Maapi() as m:
            trans = m.attach(tctx)
            service = ncs.maagic.get_node(trans, kp)
            services = ncs.maagic.get_root(trans).ncs__services.dsvc__vlan_service
            for other in services:
                if other.vlan_id == service.vlan_id:
                    continue
                for port in service.port:
                    if port in other.port:
                        raise ValueError("port %s is already in VLAN %d (service %s)"
                                         % (port, other.vlan_id, other.name))


class Main(Application):
    def setup(self):
        self.log.info("demo-service up")
        self.register_service("vlan-service", VlanService)
        self.register_validation("port-in-one-vlan", PortInOneVlan)

    def teardown(self):
        self.log.info("demo-service down")
