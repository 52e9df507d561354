"""The @name@ package: the ``@name@-servicepoint`` service."""

from ncs.application import Application, Service


class ServiceCallbacks(Service):
    """``/ncs:services/@name@``: one object serves every instance, so keep state off ``self``."""

    @Service.create
    def cb_create(self, tctx, root, service, proplist):
        self.log.info("cb_create ", service._path)
        # FASTMAP: write everything the instance needs, every time; what an instance no longer
        # writes (and all it wrote, when it is deleted) is removed by the server.
        entry = root.@py@_result.entry.create(service.name)
        entry.value = service.value


class Main(Application):
    def setup(self):
        self.log.info("@name@ up")
        self.register_service("@name@-servicepoint", ServiceCallbacks)

    def teardown(self):
        self.log.info("@name@ down")
