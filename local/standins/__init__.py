"""TEST / LOCAL STAND-INS for hosted services that cannot run on this machine.

Each module imitates one vendor service's documented HTTP behaviour closely enough that
the vendor's own client library talks to it unchanged. They exist for tests and the
local stack only: nothing under api/ or lib/ imports them, and no deployment uses them.
"""
